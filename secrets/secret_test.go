package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// canary is a secret value that must never appear in any output.
const canary = "hunter2-canary-0c4f9a"

func assertNoCanary(t *testing.T, out string) {
	t.Helper()
	for _, form := range []string{canary, fmt.Sprintf("%x", canary), fmt.Sprintf("%X", canary)} {
		if strings.Contains(out, form) {
			t.Fatalf("output holds the secret value: %s", out)
		}
	}
}

func TestSecretRedactedInEveryForm(t *testing.T) {
	s := secrets.NewSecretString("db", "v1", canary)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%T %v"} {
		out := fmt.Sprintf(verb, s)
		assertNoCanary(t, out)
		assertNoCanary(t, fmt.Sprintf(verb, &s))
		assertNoCanary(t, fmt.Sprintf(verb, []secrets.Secret{s}))
		assertNoCanary(t, fmt.Sprintf(verb, map[string]secrets.Secret{"k": s}))
		assertNoCanary(t, fmt.Sprintf(verb, struct{ P secrets.Secret }{s}))
		assertNoCanary(t, fmt.Sprintf(verb, secrets.Versions{Current: s, Previous: s}))
	}
	assertNoCanary(t, fmt.Sprint(s))
	assertNoCanary(t, fmt.Sprintln(s))
	assertNoCanary(t, s.String())
	assertNoCanary(t, s.GoString())

	j, err := json.Marshal(map[string]any{"s": s, "v": secrets.Versions{Current: s}})
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, string(j))
	txt, _ := s.MarshalText()
	assertNoCanary(t, string(txt))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("m", "secret", s, "versions", secrets.Versions{Current: s})
		l.Info("m", slog.Any("secret", s), slog.Any("ptr", &s))
		l.With("s", s).WithGroup("g").Info("m", "s", s)
	}
	assertNoCanary(t, buf.String())
	if !strings.Contains(buf.String(), "[REDACTED]") || !strings.Contains(buf.String(), "v1") {
		t.Fatalf("log output lacks the redacted form or the version: %s", buf.String())
	}
	if s.Reveal() != canary {
		t.Fatal("Reveal does not return the value")
	}
}

func TestBytesIsACopy(t *testing.T) {
	s := secrets.NewSecret("k", "v", []byte("abc"))
	b := s.Bytes()
	b[0] = 'X'
	if s.Reveal() != "abc" {
		t.Fatal("changing Bytes() changed the secret")
	}
	in := []byte("xyz")
	s = secrets.NewSecret("k", "v", in)
	in[0] = 'Q'
	if s.Reveal() != "xyz" {
		t.Fatal("NewSecret kept the caller's slice")
	}
}

func TestZeroSecret(t *testing.T) {
	var s secrets.Secret
	if !s.IsZero() || s.Reveal() != "" || s.Bytes() != nil || s.Version() != "" || s.Key() != "" || !s.FetchedAt().IsZero() {
		t.Fatal("zero Secret is not empty")
	}
	if _, err := s.Field("x"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatal(err)
	}
	if fmt.Sprintf("%#v", s) != "secrets.Secret{}" {
		t.Fatalf("%#v", s)
	}
}

func TestField(t *testing.T) {
	s := secrets.NewSecretString("app", "7", `{"user":"u","port":5432,"db":{"pass/word":"p","list":["a",{"b":true}]},"tilde~":"t"}`)
	for name, want := range map[string]string{
		"user":           "u",
		"port":           "5432",
		"/db/pass~1word": "p",
		"/db/list/0":     "a",
		"/db/list/1":     `{"b":true}`,
		"/db/list/1/b":   "true",
		"/tilde~0":       "t",
		"db":             `{"pass/word":"p","list":["a",{"b":true}]}`,
	} {
		f, err := s.Field(name)
		if err != nil {
			t.Errorf("Field(%q): %v", name, err)
			continue
		}
		if f.Reveal() != want || f.Version() != "7" || f.Key() != "app#"+name {
			t.Errorf("Field(%q) = %q (key %q), want %q", name, f.Reveal(), f.Key(), want)
		}
	}
	for _, name := range []string{"nope", "/db/nope", "/db/list/2", "/db/list/01", "/db/list/-1", "/db/list/+1", "/db/list/1 ", "/db/list/", "/user/x", "/db/list/0/x", ""} {
		if _, err := s.Field(name); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Field(%q): err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestFieldErrorsHoldNoValue(t *testing.T) {
	for _, raw := range []string{canary, `{"a":` + canary, `["` + canary + `"]`, `"` + canary + `"`, `{"x":"` + canary + `"` + `,}`} {
		s := secrets.NewSecretString("k", "v", raw)
		_, err := s.Field("password")
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Fatalf("Field on %d bytes of non-object: err = %v", len(raw), err)
		}
		assertNoCanary(t, err.Error())
		assertNoCanary(t, fmt.Sprintf("%+v %#v", err, err))
	}
}

func TestParseRef(t *testing.T) {
	for key, want := range map[string]secrets.Ref{
		"db":                                {Path: "db"},
		"db#password":                       {Path: "db", Field: "password"},
		"file:///run/secrets/db":            {Scheme: "file", Path: "/run/secrets/db"},
		"FILE:///run/secrets/app.json#/a/b": {Scheme: "file", Path: "/run/secrets/app.json", Field: "/a/b"},
		"awssm://mcp/prod#dbPassword":       {Scheme: "awssm", Path: "mcp/prod", Field: "dbPassword"},
		"awssm://mcp/prod?versionStage=X":   {Scheme: "awssm", Path: "mcp/prod?versionStage=X"},
		"env://DB_PASSWORD":                 {Scheme: "env", Path: "DB_PASSWORD"},
		"vault://secret/mcp/db#password":    {Scheme: "vault", Path: "secret/mcp/db", Field: "password"},
	} {
		got, err := secrets.ParseRef(key)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", key, got, err, want)
		}
	}
	for _, key := range []string{"", "#f", "x#", "file://", "file://#f"} {
		if _, err := secrets.ParseRef(key); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("ParseRef(%q): err = %v", key, err)
		}
	}
}

// TestCanaryNeverLeaks runs a canary value through every path that logs or
// returns errors: loads, rotations, failed refreshes, rejections, malformed
// values, staleness and reloads, with slog's text and JSON handlers at the
// lowest level.
func TestCanaryNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	handler := slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	text := slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	var errs []error
	v := func(_ context.Context, key string, c secrets.Versions) error {
		if strings.HasSuffix(c.Current.Reveal(), "reject") {
			return fmt.Errorf("rejecting %v %s %q %x", c.Current, c.Current, c.Previous, c.Current)
		}
		return nil
	}
	for _, h := range []slog.Handler{handler, text} {
		f := newFixture(t, secrets.WithLogger(slog.New(h)), secrets.WithValidator(v), secrets.WithMaxStale(time.Hour))
		f.src.Set("k", canary)
		f.src.Set("j", `{"password":"`+canary+`"}`)
		f.get("k")
		f.get("j#password")
		_, err := f.store.Get(f.ctx(), "k#field") // not JSON
		errs = append(errs, err)
		f.src.Set("k", canary+"reject")
		errs = append(errs, f.store.Refresh(f.ctx(), "k"), f.store.Reload(f.ctx()))
		f.src.Set("j", `{"password":`+canary)
		errs = append(errs, f.store.Refresh(f.ctx(), "j#password"), f.store.Reload(f.ctx()))
		f.src.Set("j", `{"password":"`+canary+`3"}`)
		f.src.Set("k", canary+"2")
		if err := f.store.Reload(f.ctx()); err != nil {
			t.Fatal(err)
		}
		f.src.fail("", fmt.Errorf("backend down: %w", secrets.ErrTransient))
		f.clock.Advance(2 * time.Hour)
		_, err = f.store.Get(f.ctx(), "k")
		errs = append(errs, err, f.store.Health(f.ctx()))
		for _, st := range f.store.Statuses() {
			errs = append(errs, st.LastError)
			assertNoCanary(t, fmt.Sprintf("%+v %#v", st, st))
		}
		f.store.Close()
	}
	for _, err := range errs {
		if err != nil {
			assertNoCanary(t, err.Error())
			assertNoCanary(t, fmt.Sprintf("%+v %#v", err, err))
		}
	}
	assertNoCanary(t, logs.String())
	if !strings.Contains(logs.String(), "rotated") || !strings.Contains(logs.String(), "rejecting [REDACTED]") {
		t.Fatalf("the logs do not show the paths the test meant to exercise:\n%s", logs.String())
	}
}

// TestContentVersion pins the scheme: ids are compared across processes and
// releases (a JWT's kid may be one), so changing it changes every id.
func TestContentVersion(t *testing.T) {
	a, b := secrets.ContentVersion([]byte("hunter2")), secrets.ContentVersion([]byte("hunter3"))
	if a == b || a != secrets.ContentVersion([]byte("hunter2")) {
		t.Fatalf("ContentVersion: %q %q", a, b)
	}
	if a == "f52fbd32b2b3b86f" { // the first 8 bytes of SHA-256("hunter2")
		t.Fatal("ContentVersion is the plain digest that password tables hold")
	}
	if want := "7d8d7b077398f21e"; a != want {
		t.Fatalf("ContentVersion(hunter2) = %q, want %q", a, want)
	}
}

func TestVersionsField(t *testing.T) {
	v := secrets.Versions{
		Current:  secrets.NewSecretString("app", "2", `{"pw":"new"}`),
		Previous: secrets.NewSecretString("app", "1", `{"user":"u"}`),
	}
	f, err := v.Field("pw")
	if err != nil || f.Current.Reveal() != "new" || f.Current.Key() != "app#pw" || f.Current.Version() != "2" {
		t.Fatalf("Field: %v, key %q", err, f.Current.Key())
	}
	if !f.Previous.IsZero() {
		t.Fatal("a previous version without the field was kept")
	}
	v.Previous = secrets.NewSecretString("app", "1", `{"pw":"old"}`)
	if f, _ = v.Field("pw"); f.Previous.Reveal() != "old" || f.Previous.Key() != "app#pw" {
		t.Fatalf("previous: %q", f.Previous.Key())
	}
	if _, err := v.Field("nope"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("missing field: %v", err)
	}
}

// spewLike prints v the way go-spew does with testify's configuration
// (DisableMethods: no String, Error or Format is called): every field,
// exported or not, every pointer followed, every string printed. It is the
// worst case of the reflection-based printers.
func spewLike(v any) string {
	var b strings.Builder
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value, depth int)
	walk = func(v reflect.Value, depth int) {
		if depth > 20 {
			b.WriteString("<max depth>")
			return
		}
		switch v.Kind() {
		case reflect.Invalid:
			b.WriteString("<invalid>")
		case reflect.Pointer:
			if v.IsNil() {
				b.WriteString("<nil>")
				return
			}
			if seen[v.Pointer()] {
				b.WriteString("<already shown>")
				return
			}
			seen[v.Pointer()] = true
			b.WriteString("&")
			walk(v.Elem(), depth+1)
		case reflect.Interface:
			if v.IsNil() {
				b.WriteString("<nil>")
				return
			}
			walk(v.Elem(), depth+1)
		case reflect.Struct:
			b.WriteString(v.Type().String() + "{")
			for i := range v.NumField() {
				b.WriteString(v.Type().Field(i).Name + ": ")
				walk(v.Field(i), depth+1)
				b.WriteString(", ")
			}
			b.WriteString("}")
		case reflect.Slice, reflect.Array:
			b.WriteString("[")
			for i := range v.Len() {
				walk(v.Index(i), depth+1)
				b.WriteString(" ")
			}
			b.WriteString("]")
		case reflect.Map:
			b.WriteString("map[")
			iter := v.MapRange()
			for iter.Next() {
				walk(iter.Key(), depth+1)
				b.WriteString(": ")
				walk(iter.Value(), depth+1)
				b.WriteString(" ")
			}
			b.WriteString("]")
		case reflect.String:
			b.WriteString(strconv.Quote(v.String()))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(v.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			b.WriteString(strconv.FormatUint(v.Uint(), 10))
		case reflect.Bool:
			b.WriteString(strconv.FormatBool(v.Bool()))
		case reflect.Func, reflect.Chan, reflect.UnsafePointer:
			// What spew prints: the type and an address. Neither
			// reflection nor spew can see what a closure captured.
			fmt.Fprintf(&b, "(%s) %#x", v.Type(), v.Pointer())
		default:
			fmt.Fprintf(&b, "<%s>", v.Kind())
		}
	}
	walk(reflect.ValueOf(v), 0)
	return b.String()
}

func TestSpewLikeSeesUnexportedStrings(t *testing.T) {
	type inner struct{ pw string }
	out := spewLike(struct{ p *inner }{&inner{canary}})
	if !strings.Contains(out, canary) {
		t.Fatalf("the test printer does not reach an unexported string: %s", out)
	}
}

// TestSecretRedactedInUnexportedFields puts Secrets and Versions where fmt
// cannot call Format (unexported fields, behind pointers, in slices, maps
// and interfaces) and prints them with every verb, through fmt.Errorf,
// log.Printf, slog and a spew-like printer that follows every pointer.
func TestSecretRedactedInUnexportedFields(t *testing.T) {
	src := memory.New()
	src.Set("db", `{"password":"`+canary+`"}`)
	src.Set("db", `{"password":"`+canary+`-2"}`)
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	served, err := st.Versions(ctx, "db#password")
	if err != nil || !strings.HasPrefix(served.Current.Reveal(), canary) {
		t.Fatalf("Versions: %v", err)
	}
	whole, err := st.Get(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	built := secrets.NewSecretString("k", "v1", canary)
	field, err := secrets.NewSecretString("j", "v1", `{"pw":"`+canary+`"}`).Field("pw")
	if err != nil {
		t.Fatal(err)
	}
	vf, err := secrets.Versions{Current: whole}.Field("password")
	if err != nil {
		t.Fatal(err)
	}

	type deep struct {
		list []*secrets.Versions
		arr  [2]secrets.Secret
	}
	for name, s := range map[string]secrets.Secret{"built": built, "field": field, "served": served.Current, "served previous": served.Previous, "whole": whole, "versions field": vf.Current} {
		v := served
		if name == "built" {
			v = secrets.Versions{Current: built, Previous: built}
		}
		holders := map[string]any{
			"value":          struct{ pw secrets.Secret }{s},
			"pointer":        struct{ pw *secrets.Secret }{&s},
			"slice":          struct{ pws []secrets.Secret }{[]secrets.Secret{s, s}},
			"map value":      struct{ m map[string]secrets.Secret }{map[string]secrets.Secret{"k": s}},
			"map key":        struct{ m map[secrets.Secret]int }{map[secrets.Secret]int{s: 1}},
			"pointer slice":  struct{ ps []*secrets.Secret }{[]*secrets.Secret{&s}},
			"interface":      struct{ a any }{s},
			"versions":       struct{ v secrets.Versions }{v},
			"versions ptr":   struct{ v *secrets.Versions }{&v},
			"versions slice": struct{ vs []secrets.Versions }{[]secrets.Versions{v}},
			"versions map":   struct{ vm map[string]*secrets.Versions }{map[string]*secrets.Versions{"k": &v}},
			"nested":         struct{ d deep }{deep{list: []*secrets.Versions{&v}, arr: [2]secrets.Secret{s, s}}},
			"embedded":       struct{ deep }{deep{arr: [2]secrets.Secret{s}}},
		}
		for hname, h := range holders {
			what := name + " in " + hname
			ptr := reflect.New(reflect.TypeOf(h))
			ptr.Elem().Set(reflect.ValueOf(h))
			for _, x := range []any{h, ptr.Interface()} {
				for _, verb := range []string{"%s", "%q", "%t", "%e", "%v", "%+v", "%#v", "%x", "%X", "%d", "%10s", "%-8q", "%p", "%T %v"} {
					assertNoCanaryIn(t, what+" "+verb, fmt.Sprintf(verb, x))
				}
				assertNoCanaryIn(t, what+" Sprint", fmt.Sprint(x)+fmt.Sprintln(x))
				assertNoCanaryIn(t, what+" Errorf", fmt.Errorf("failed with %v, %s, %+v: %w", x, x, x, errors.New("cause")).Error())

				var buf bytes.Buffer
				l := log.New(&buf, "", 0)
				l.Printf("%v %+v %s %q", x, x, x, x)
				l.Print(x)
				l.Println(x)
				slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "x", x)
				slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "x", x)
				assertNoCanaryIn(t, what+" log", buf.String())

				assertNoCanaryIn(t, what+" spew", spewLike(x))
			}
		}
	}
	// The metadata stays visible to those printers: they still help.
	if out := spewLike(struct{ pw secrets.Secret }{built}); !strings.Contains(out, `"k"`) || !strings.Contains(out, `"v1"`) {
		t.Errorf("the key and version are not shown: %s", out)
	}
}

// assertNoCanaryIn is assertNoCanary naming what was printed.
func assertNoCanaryIn(t *testing.T, what, out string) {
	t.Helper()
	for _, form := range []string{canary, fmt.Sprintf("%x", canary), fmt.Sprintf("%X", canary)} {
		if strings.Contains(out, form) {
			t.Fatalf("%s: output holds the secret value: %s", what, out)
		}
	}
}

// TestSecretStaysCheap: the value behind a closure costs no allocation to
// read, compare or measure.
func TestSecretStaysCheap(t *testing.T) {
	a := secrets.NewSecretString("k", "v", strings.Repeat("x", 4096))
	b := secrets.NewSecretString("k", "v", strings.Repeat("x", 4096))
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		sink += len(a.Reveal()) + a.Len()
		if a.Equal(b) {
			sink++
		}
	}); n != 0 {
		t.Errorf("Reveal, Len and Equal allocate %v times", n)
	}
	if !a.Equal(b) || a.Equal(secrets.NewSecretString("k", "v", "y")) || !(secrets.Secret{}).Equal(secrets.Secret{}) {
		t.Error("Equal is wrong")
	}
	_ = sink
}

// TestFieldRefusesWhatJSONWouldReplace: encoding/json turns invalid UTF-8
// and unpaired surrogate escapes into U+FFFD; a field is never served so
// changed, and the error quotes nothing of the value.
func TestFieldRefusesWhatJSONWouldReplace(t *testing.T) {
	bad := map[string]string{
		"invalid byte in the field":        `{"pw":"` + canary + "\xff" + `"}`,
		"truncated sequence":               `{"pw":"` + canary + "\xe2\x82" + `"}`,
		"overlong encoding":                `{"pw":"` + canary + "\xc0\xaf" + `"}`,
		"encoded surrogate":                `{"pw":"` + canary + "\xed\xa0\x80" + `"}`,
		"lone high surrogate":              `{"pw":"` + canary + `\ud800"}`,
		"lone low surrogate":               `{"pw":"` + canary + `\udc00"}`,
		"high then not low":                `{"pw":"` + canary + `\ud800\u0041"}`,
		"two highs":                        `{"pw":"` + canary + `\uD800\uDBFF"}`,
		"high at the end":                  `{"pw":"` + canary + `\ud83d"}`,
		"after an escaped backslash":       `{"pw":"` + canary + `\\\ud800"}`,
		"in another field":                 `{"pw":"` + canary + `","x":"\udfff"}`,
		"in a member name":                 `{"pw":"` + canary + `","\ud800":1}`,
		"invalid byte in a member name":    `{"pw":"` + canary + `","p` + "\xff" + `":1}`,
		"in a nested object":               `{"pw":"` + canary + `","db":{"x":["\ud800"]}}`,
		"invalid byte in an array element": `["` + canary + "\xff" + `"]`,
	}
	for name, raw := range bad {
		for _, sel := range []string{"pw", "/pw", "/0", "db", "/db/x/0"} {
			s := secrets.NewSecretString("k", "v", raw)
			f, err := s.Field(sel)
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("%s, Field(%q) = %q, %v; want ErrInvalid", name, sel, f.Reveal(), err)
				continue
			}
			assertNoCanaryIn(t, name, err.Error())
			if strings.Contains(err.Error(), "\ufffd") || strings.Contains(err.Error(), "\\u") {
				t.Errorf("%s: the message quotes the input: %s", name, err)
			}
			if _, err := (secrets.Versions{Current: s}).Field(sel); !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("%s, Versions.Field(%q): %v", name, sel, err)
			}
		}
	}
	good := map[string]string{
		`{"pw":"\ud83d\ude00"}`:         "\U0001F600",
		`{"pw":"\uD83D\uDE00x"}`:        "\U0001F600x",
		`{"pw":"\\ud800"}`:              `\ud800`,
		`{"pw":"\\\\ud800"}`:            `\\ud800`,
		`{"pw":"\\\ud83d\ude00"}`:       `\` + "\U0001F600",
		`{"pw":"\ufffd is fine"}`:       "\ufffd is fine",
		`{"pw":"é ☃ 日本", "x":"\u00e9"}`: "é ☃ 日本",
		`{"pw":"a\u0000b"}`:             "a\x00b",
	}
	for raw, want := range good {
		f, err := secrets.NewSecretString("k", "v", raw).Field("pw")
		if err != nil || f.Reveal() != want {
			t.Errorf("Field(pw) of %s = %q, %v; want %q", raw, f.Reveal(), err, want)
		}
	}

	// The Store refuses such a value for a field key, and keeps none.
	src := memory.New()
	src.Set("j", `{"pw":"`+canary+`\ud800"}`)
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "j#pw")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Store.Get of a field with a lone surrogate: %v", err)
	}
	assertNoCanaryIn(t, "Store.Get", err.Error())
}

// TestFieldEmptyNameOneRule: an empty field name is an error wrapping
// ErrInvalid for Secret.Field and Versions.Field alike.
func TestFieldEmptyNameOneRule(t *testing.T) {
	s := secrets.NewSecretString("app", "1", `{"":"empty name","pw":"p"}`)
	_, serr := s.Field("")
	_, verr := secrets.Versions{Current: s, Previous: s}.Field("")
	for name, err := range map[string]error{"Secret.Field": serr, "Versions.Field": verr} {
		var e *secrets.Error
		if !errors.Is(err, secrets.ErrInvalid) || !errors.As(err, &e) || e.Op != "field" || e.Key != "app#" {
			t.Fatalf(`%s(""): %v, want an *Error for "app#" wrapping ErrInvalid`, name, err)
		}
	}
	if serr.Error() != verr.Error() {
		t.Errorf("two messages for one rule:\n%s\n%s", serr, verr)
	}
	// The member named "" stays reachable by its JSON pointer.
	if f, err := s.Field("/"); err != nil || f.Reveal() != "empty name" {
		t.Errorf(`Field("/") = %q, %v`, f.Reveal(), err)
	}
	if _, err := (secrets.Versions{}).Field("pw"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("Field of zero Versions: %v", err)
	}
}

// TestFieldNameInErrorBounded: a field name of 1 MiB, or holding a newline,
// gives a short one-line error.
func TestFieldNameInErrorBounded(t *testing.T) {
	s := secrets.NewSecretString("app", "1", `{"pw":"p"}`)
	for _, name := range []string{strings.Repeat("n", 1<<20), "/" + strings.Repeat("n/", 1<<19), "a\nb", "/a\nb"} {
		_, err := s.Field(name)
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		assertShortLine(t, "Field", err.Error())
		_, err = secrets.Versions{Current: s}.Field(name)
		assertShortLine(t, "Versions.Field", err.Error())
	}
}
