package secrets

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestParseDocErrorsAsExtractField: a value that cannot be parsed fails
// parseDoc with the error, class and words, that extractField gives for
// every field of it, and no part of the value is quoted.
func TestParseDocErrorsAsExtractField(t *testing.T) {
	const secret = "s3cr3t-value-9f1e"
	for raw, want := range map[string]string{
		"":                                 "invalid secret: value is not a JSON object",
		"  \n ":                            "invalid secret: value is not a JSON object",
		secret:                             "invalid secret: value is not a JSON object",
		`"` + secret + `"`:                 "invalid secret: value is not a JSON object",
		"42":                               "invalid secret: value is not a JSON object",
		"null":                             "invalid secret: value is not a JSON object",
		`{"a":` + secret:                   "invalid secret: value is not valid JSON",
		`{"a":"` + secret + `"} x`:         "invalid secret: value is not valid JSON",
		`["` + secret + `",]`:              "invalid secret: value is not valid JSON",
		`{"a":"` + secret + "\x01" + `"}`:  "invalid secret: value is not valid JSON",
		`{"a":"` + secret + "\xff" + `"}`:  "invalid secret: value is not valid UTF-8",
		`{"a":"` + secret + `\udc00"}`:     "invalid secret: value holds an unpaired UTF-16 surrogate escape",
		`[{"a":["` + secret + `\ud800"]}]`: "invalid secret: value holds an unpaired UTF-16 surrogate escape",
	} {
		d, err := parseDoc(raw)
		if d != nil || !errors.Is(err, ErrInvalid) || err.Error() != want {
			t.Errorf("parseDoc(%q) = %v, %v; want %q", raw, d, err, want)
			continue
		}
		for _, name := range []string{"a", "/a", "/0/a/0", "x"} {
			_, ferr := extractField([]byte(raw), name)
			if ferr == nil || ferr.Error() != err.Error() || !errors.Is(ferr, ErrInvalid) {
				t.Errorf("extractField(%q, %q) = %v; parseDoc gave %v", raw, name, ferr, err)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}

// TestJSONDocFields: one parsed document answers every selection as
// extractField does, again and again.
func TestJSONDocFields(t *testing.T) {
	raw := `{"user":"u","port":5432,"db":{"pass/word":"p","list":["a",{"b":true}, null]},"tilde~":"t","":"e","n":null}`
	d, err := parseDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"user": "u", "port": "5432", "/db/pass~1word": "p", "/db/list/0": "a",
		"/db/list/1": `{"b":true}`, "/db/list/1/b": "true",
		"/tilde~0": "t", "/": "e",
		"db": `{"pass/word":"p","list":["a",{"b":true},null]}`,
	}
	// A null field is no value, as a missing one is.
	missing := []string{"n", "/db/list/2", "nope", "/db/nope", "/db/list/3", "/db/list/01", "/db/list/+1", "/db/list/-1",
		"/user/x", "/db/list/0/x", "/db/list/", "/n/x", "/db/pass/word", "tilde~0"}
	for round := range 2 {
		for name, w := range want {
			got, err := d.field(name)
			old, oerr := extractField([]byte(raw), name)
			if err != nil || got != w || oerr != nil || old != got {
				t.Errorf("round %d: field(%q) = %q, %v; extractField %q, %v; want %q", round, name, got, err, old, oerr, w)
			}
		}
		for _, name := range missing {
			_, err := d.field(name)
			_, oerr := extractField([]byte(raw), name)
			if !errors.Is(err, ErrInvalid) || oerr == nil || err.Error() != oerr.Error() {
				t.Errorf("round %d: field(%q): %v; extractField: %v", round, name, err, oerr)
			}
			want := "invalid secret: field " + strconv.Quote(name) + " not found"
			if name == "n" || name == "/db/list/2" {
				want = "invalid secret: field " + strconv.Quote(name) + " is null"
			}
			if err.Error() != want {
				t.Errorf("field(%q): %q, want %q", name, err, want)
			}
		}
		if _, err := d.field(""); !errors.Is(err, ErrInvalid) || err.Error() != "invalid secret: empty field name" {
			t.Errorf(`field(""): %v`, err)
		}
	}
	arr, err := parseDoc(` ["x", {"k": "v"}] `)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := arr.field("/1/k"); err != nil || v != "v" {
		t.Errorf("array document: %q, %v", v, err)
	}
	if v, err := arr.field("0"); err != nil || v != "x" {
		t.Errorf("array document, plain name: %q, %v", v, err)
	}
}

// TestJSONDocConcurrent selects fields of one document from many goroutines,
// each going through the same lazily parsed levels (run with -race).
func TestJSONDocConcurrent(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"db":{`)
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"f%d":{"v":["x%d"]}`, i, i)
	}
	b.WriteString(`}}`)
	d, err := parseDoc(b.String())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				i := (i + g*7) % 50
				got, err := d.field(fmt.Sprintf("/db/f%d/v/0", i))
				if err != nil || got != fmt.Sprintf("x%d", i) {
					errs <- fmt.Errorf("f%d: %q, %v", i, got, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// bigDoc returns a JSON object of about size bytes with n string fields,
// f0 … f(n-1), nested under prefix when it is not "".
func bigDoc(n, size int, nested bool) (raw string, names []string) {
	var b strings.Builder
	if nested {
		b.WriteString(`{"db":`)
	}
	b.WriteString("{")
	val := strings.Repeat("x", size/n)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"f%d":"%s"`, i, val)
		if nested {
			names = append(names, fmt.Sprintf("/db/f%d", i))
		} else {
			names = append(names, fmt.Sprintf("f%d", i))
		}
	}
	b.WriteString("}")
	if nested {
		b.WriteString("}")
	}
	return b.String(), names
}

// BenchmarkFields100Of1MiB selects 100 fields of a 1 MiB JSON value: parsed
// once for all of them (parseDoc), and parsed once per field (as the Store
// did before parseDoc). "nested" selects them through a JSON pointer, which
// parses the level below once as well.
func BenchmarkFields100Of1MiB(b *testing.B) {
	for _, nested := range []bool{false, true} {
		raw, names := bigDoc(100, 1<<20, nested)
		suffix := ""
		if nested {
			suffix = "/nested"
		}
		b.Run("ParseOnce"+suffix, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				d, err := parseDoc(raw)
				if err != nil {
					b.Fatal(err)
				}
				for _, name := range names {
					if _, err := d.field(name); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run("ParsePerField"+suffix, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				for _, name := range names {
					if _, err := selectField(raw, name); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
