package memory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
	"github.com/rotorhq/rotor/sources/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct{ src *memory.Source }

func (h harness) Key(name string) string { return name }
func (h harness) Set(_ context.Context, name, value string) error {
	h.src.Set(name, value)
	return nil
}
func (h harness) Delete(_ context.Context, name string) error {
	h.src.Delete(name)
	return nil
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Config{
		New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
			src := memory.New()
			return src, harness{src}
		},
		KeepsPrevious: true,
	})
}

func TestDeleteThenSetStartsAfresh(t *testing.T) {
	src := memory.New()
	src.Set("k", "a")
	src.Set("k", "b")
	src.Delete("k")
	src.Set("k", "c")
	v, err := src.Fetch(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Reveal() != "c" || !v.Previous.IsZero() {
		t.Fatalf("after Delete and Set: current %q, previous zero %v", v.Current.Reveal(), v.Previous.IsZero())
	}
	if v.Current.Version() == "1" || v.Current.Version() == "2" {
		t.Fatalf("a new key reused version id %q", v.Current.Version())
	}
}

// TestKeysInErrorsAreBounded asks for a 1 MiB key and a key holding a
// newline: the errors are short and on one line.
func TestKeysInErrorsAreBounded(t *testing.T) {
	src := memory.New()
	for name, key := range map[string]string{
		"1 MiB key":      strings.Repeat("k", 1<<20),
		"newline in key": "A\nB",
	} {
		_, err := src.Fetch(context.Background(), key)
		if !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("%s: err = %v", name, err)
		}
		if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%s: message of %d bytes, or not on one line: %.300q", name, len(msg), msg)
		}
	}
}

// TestSetKeepsPending: an operator's Set beside a rotation leaves the staged
// version pending, and the rotation's Promote then loses its condition.
func TestSetKeepsPending(t *testing.T) {
	ctx := context.Background()
	src := memory.New()
	src.Set("k", "a")
	v, _ := src.Fetch(ctx, "k")
	id, err := src.Stage(ctx, "k", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	src.Set("k", "c")
	v, _ = src.Fetch(ctx, "k")
	if v.Current.Reveal() != "c" || v.Pending.Version() != id {
		t.Fatalf("after Set: current %q, pending %q", v.Current.Reveal(), v.Pending.Version())
	}
	if err := src.Promote(ctx, "k", id, "1"); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("Promote over a version replaced by Set: %v", err)
	}
}
