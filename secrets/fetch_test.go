package secrets_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// TestEmptyValueIsRefused: the Store serves no empty value. A source that
// returns one fails as ErrInvalid, on a first load and on a refresh, and
// the last good value stays; so does a selected field that is empty.
func TestEmptyValueIsRefused(t *testing.T) {
	f := newFixture(t)
	f.src.Set("empty", "")
	if _, err := f.store.Get(f.ctx(), "empty"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("first load of an empty value: %v, want ErrInvalid", err)
	}
	f.src.Set("db", `{"password":""}`)
	if _, err := f.store.Get(f.ctx(), "db#password"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("first load of an empty field: %v, want ErrInvalid", err)
	}

	f.src.Set("k", "good")
	f.get("k")
	f.src.Set("k", "")
	if err := f.store.Refresh(f.ctx(), "k"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to an empty value: %v, want ErrInvalid", err)
	}
	if got := f.get("k").Reveal(); got != "good" {
		t.Fatalf("Get = %q, want the last good value", got)
	}

	f.src.Set("cred", `{"password":"pw1"}`)
	f.get("cred#password")
	f.src.Set("cred", `{"password":""}`)
	if err := f.store.Refresh(f.ctx(), "cred#password"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to an empty field: %v, want ErrInvalid", err)
	}
	if got := f.get("cred#password").Reveal(); got != "pw1" {
		t.Fatalf("Get = %q, want the last good value", got)
	}
	if err := f.store.Reload(f.ctx()); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Reload with an empty field: %v, want ErrInvalid", err)
	}
}

// TestEmptyPreviousIsNone: an empty previous version is no previous
// version, not an empty credential to fall back on.
func TestEmptyPreviousIsNone(t *testing.T) {
	st, err := secrets.New(pairSrc{cur: "new", prev: ""})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.Versions(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Previous.IsZero() {
		t.Fatal("an empty previous version is served")
	}
}

type pairSrc struct{ cur, prev string }

func (p pairSrc) Fetch(_ context.Context, k string) (secrets.Versions, error) {
	return secrets.Versions{
		Current:  secrets.NewSecretString(k, "2", p.cur),
		Previous: secrets.NewSecretString(k, "1", p.prev),
	}, nil
}

func TestSourcePanicIsAnError(t *testing.T) {
	st, err := secrets.New(panicSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "k")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

type panicSource struct{}

func (panicSource) Fetch(context.Context, string) (secrets.Versions, error) {
	panic("boom " + canary)
}

func TestFetchTimeoutIsTransient(t *testing.T) {
	src := newCtl()
	src.Set("k", "v")
	release := src.hold("k")
	defer release()
	st, err := secrets.New(src, secrets.WithFetchTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get(context.Background(), "k"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
}
