package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
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
	for _, name := range []string{"nope", "/db/nope", "/db/list/2", "/db/list/01", "/db/list/-1", "/user/x", ""} {
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
