package keyquote_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/keyquote"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuoteShortKeysAsStrconv(t *testing.T) {
	for _, s := range []string{"", "db", "file:///run/secrets/db#password", "A\nB", "tab\there", "\"q\"", `back\slash`, "\xff\xfe", "héllo", "\u202e", strings.Repeat("a", keyquote.Max)} {
		if got, want := keyquote.Quote(s), strconv.Quote(s); got != want {
			t.Errorf("Quote(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestQuoteBounded(t *testing.T) {
	for name, s := range map[string]string{
		"1MiB ASCII":     strings.Repeat("k", 1<<20),
		"1MiB invalid":   strings.Repeat("\xff", 1<<20),
		"1MiB controls":  strings.Repeat("\x01", 1<<20),
		"1MiB newlines":  strings.Repeat("a\n", 1<<19),
		"1MiB non-print": strings.Repeat("\U000e0001", 1<<18),
		"1MiB runes":     strings.Repeat("日本", 1<<18),
		"just over":      strings.Repeat("a", keyquote.Max+1),
	} {
		q := keyquote.Quote(s)
		if len(q) > keyquote.Max+2+len(keyquote.Cut) {
			t.Errorf("%s: %d bytes", name, len(q))
		}
		if strings.ContainsAny(q, "\n\r") || !utf8.ValidString(q) {
			t.Errorf("%s: not one valid line: %q", name, q)
		}
		if !strings.HasSuffix(q, keyquote.Cut+`"`) {
			t.Errorf("%s: a cut is not marked: %s", name, q)
		}
		body, err := strconv.Unquote(q)
		if err != nil {
			t.Errorf("%s: not a Go string literal: %v", name, err)
			continue
		}
		if body = strings.TrimSuffix(body, keyquote.Cut); !strings.HasPrefix(s, body) {
			t.Errorf("%s: the quoted text is not a prefix of the key", name)
		}
	}
	if q := keyquote.Quote(strings.Repeat("a", 1<<20)); q != `"`+strings.Repeat("a", keyquote.Max)+`..."` {
		t.Errorf("a long ASCII key: %s", q)
	}
	// A multi-byte character is never split.
	if q := keyquote.Quote(strings.Repeat("a", keyquote.Max-1) + "é"); q != `"`+strings.Repeat("a", keyquote.Max-1)+`..."` {
		t.Errorf("a character at the limit: %s", q)
	}
}

func TestLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		`Value 'x' at "id"`:    `Value 'x' at "id"`,
		"two\nlines\r\n":       `two\nlines\r\n`,
		"esc \x1b[31m red":     `esc \x1b[31m red`,
		"bad \xff byte":        `bad \xff byte`,
		"héllo wörld":          "héllo wörld",
		"bidi \u202e override": `bidi \u202e override`,
	} {
		if got := keyquote.Line(in, 0); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x\n", 1<<20)
	got := keyquote.Line(long, 100)
	if len(got) > 100+len(keyquote.Cut) || strings.Contains(got, "\n") || !strings.HasSuffix(got, keyquote.Cut) {
		t.Errorf("Line of 2 MiB with max 100: %d bytes: %q", len(got), got)
	}
	if got := keyquote.Line(strings.Repeat("y", 10), 10); got != strings.Repeat("y", 10) {
		t.Errorf("text of exactly max bytes was cut: %q", got)
	}
}

func BenchmarkQuoteShort(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = keyquote.Quote("file:///run/secrets/db.json#password")
	}
}

func BenchmarkQuote1MiB(b *testing.B) {
	s := strings.Repeat("k", 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		_ = keyquote.Quote(s)
	}
}
