package secrets_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// assertShortLine fails unless msg is under 1 KiB and on one line.
func assertShortLine(t *testing.T, what, msg string) {
	t.Helper()
	if len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("%s: message of %d bytes, or not on one line: %.300q", what, len(msg), msg)
	}
}

func TestErrorWithoutCause(t *testing.T) {
	e := &secrets.Error{Op: "get"}
	if got := e.Error(); got != `secrets: get "": failed` {
		t.Errorf("Error() = %q", got)
	}
	if e.Unwrap() != nil || errors.Is(e, secrets.ErrInvalid) {
		t.Error("an Error without a cause unwraps to something")
	}
	if got := (&secrets.Error{}).Error(); got != `secrets: operation "": failed` {
		t.Errorf("zero Error: %q", got)
	}
}

func TestNilErrorReceivers(t *testing.T) {
	var e *secrets.Error
	if got := e.Error(); got != "secrets: <nil *Error>" {
		t.Errorf("nil *Error: %q", got)
	}
	if e.Unwrap() != nil {
		t.Error("nil *Error unwraps to something")
	}
	var re *secrets.ReloadError
	if got := re.Error(); got != "secrets: <nil *ReloadError>" {
		t.Errorf("nil *ReloadError: %q", got)
	}
	if re.Unwrap() != nil || errors.Is(re, secrets.ErrNotFound) {
		t.Error("nil *ReloadError unwraps to something")
	}
	_ = fmt.Sprintf("%v %+v %s", e, re, []error{e, re})
}

func TestReloadErrorNilElements(t *testing.T) {
	re := &secrets.ReloadError{Errors: []*secrets.Error{
		nil,
		{Op: "fetch", Key: "db", Err: secrets.ErrNotFound},
		nil,
		{Op: "validate", Key: "api"}, // no cause either
	}}
	msg := re.Error()
	want := `secrets: reload applied nothing: 2 key(s) failed: "db", "api" (first: secrets: fetch "db": secret not found)`
	if msg != want {
		t.Errorf("Error() = %q\nwant      %q", msg, want)
	}
	if !errors.Is(re, secrets.ErrNotFound) {
		t.Error("errors.Is does not find the cause of a key")
	}
	var ke *secrets.Error
	if !errors.As(re, &ke) || ke == nil || ke.Key != "db" {
		t.Errorf("errors.As found %v", ke)
	}
	if n := len(re.Unwrap()); n != 2 {
		t.Errorf("Unwrap returned %d errors, want the 2 non-nil ones", n)
	}
	for _, errs := range [][]*secrets.Error{nil, {}, {nil, nil}} {
		re := &secrets.ReloadError{Errors: errs}
		if got := re.Error(); got != "secrets: reload applied nothing" {
			t.Errorf("ReloadError with Errors %v: %q", errs, got)
		}
		if errors.Is(re, secrets.ErrNotFound) {
			t.Error("an empty ReloadError matches a class")
		}
	}
}

func TestErrorQuotesKeyBounded(t *testing.T) {
	long := strings.Repeat("k", 1<<20)
	for name, e := range map[string]error{
		"1 MiB key":         &secrets.Error{Op: "get", Key: long, Err: secrets.ErrNotFound},
		"newline in key":    &secrets.Error{Op: "get", Key: "env://A\nB", Err: secrets.ErrNotFound},
		"1 MiB invalid key": &secrets.Error{Op: "get", Key: strings.Repeat("\xff", 1<<20), Err: secrets.ErrNotFound},
		"reload": &secrets.ReloadError{Errors: []*secrets.Error{
			{Op: "fetch", Key: "A\nB", Err: secrets.ErrNotFound},
		}},
	} {
		assertShortLine(t, name, e.Error())
	}
	if got := (&secrets.Error{Op: "get", Key: "env://A\nB", Err: secrets.ErrNotFound}).Error(); !strings.Contains(got, `"env://A\nB"`) {
		t.Errorf("the key is not quoted: %q", got)
	}
	_, err := secrets.ParseRef(long + "#")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("ParseRef: %v", err)
	}
	assertShortLine(t, "ParseRef", err.Error())
}
