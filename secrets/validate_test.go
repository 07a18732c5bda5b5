package secrets_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// recorder is a validator that records what it saw and rejects a password
// of "bad", in a whole JSON value or in a field.
type recorder struct {
	mu   sync.Mutex
	seen []string // "key=value"
}

func (r *recorder) validate(_ context.Context, key string, c secrets.Versions) error {
	r.mu.Lock()
	r.seen = append(r.seen, key+"="+c.Current.Reveal())
	r.mu.Unlock()
	v := c.Current.Reveal()
	if v == "bad" || v == `{"user":"u","password":"bad"}` {
		return errors.New("login failed")
	}
	return nil
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestValidatorOnValueCoversItsFields: a validator registered for a whole
// value runs on every change of it although only a field is read, and one
// registered for a field runs although only another field is read.
func TestValidatorOnValueCoversItsFields(t *testing.T) {
	for _, tc := range []struct {
		registered, read, want string
	}{
		{"db", "db#password", `db={"user":"u","password":"bad"}`},
		{"db#password", "db#user", "db#password=bad"},
	} {
		t.Run(tc.registered, func(t *testing.T) {
			r := &recorder{}
			f := newFixture(t, secrets.WithValidator(r.validate, tc.registered))
			f.src.Set("db", `{"user":"u","password":"p1"}`)
			before := f.get(tc.read).Reveal()

			f.src.Set("db", `{"user":"u","password":"bad"}`)
			err := f.store.Refresh(f.ctx(), tc.read)
			if !errors.Is(err, secrets.ErrRejected) {
				t.Fatalf("Refresh: %v, want the candidate rejected", err)
			}
			if got := f.get(tc.read).Reveal(); got != before {
				t.Fatalf("%s = %q after a rejected candidate, want %q kept", tc.read, got, before)
			}
			if calls := r.calls(); len(calls) != 1 || calls[0] != tc.want {
				t.Fatalf("validator calls %q, want [%s]", calls, tc.want)
			}
			st := f.status(tc.read)
			if !errors.Is(st.LastError, secrets.ErrRejected) || st.Failures != 1 {
				t.Fatalf("status: %v, %d failures", st.LastError, st.Failures)
			}

			f.src.Set("db", `{"user":"u","password":"p2"}`)
			if err := f.store.Refresh(f.ctx(), tc.read); err != nil {
				t.Fatalf("Refresh with a good candidate: %v", err)
			}
		})
	}
}

// TestValidatorForUnreadFieldNeedsTheField: a field a validator was
// registered for, present in the value served, must not vanish with a
// candidate, even though nobody has read it yet.
func TestValidatorForUnreadFieldNeedsTheField(t *testing.T) {
	r := &recorder{}
	f := newFixture(t, secrets.WithValidator(r.validate, "db#password"))
	f.src.Set("db", `{"user":"u","password":"p1"}`)
	f.get("db#user")
	f.src.Set("db", `{"user":"u2"}`)
	if err := f.store.Refresh(f.ctx(), "db#user"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh: %v, want the candidate refused for its missing field", err)
	}
	if got := f.get("db#user").Reveal(); got != "u" {
		t.Fatalf("db#user = %q, want u kept", got)
	}
}

// TestValidatorKeyMustParse: a key that cannot be parsed is an error of
// New, not a validator that silently never runs.
func TestValidatorKeyMustParse(t *testing.T) {
	_, err := secrets.New(newCtl(), secrets.WithValidator((&recorder{}).validate, "db#"))
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("New: %v, want ErrInvalid", err)
	}
}

// TestValidatorOnValueInBackground: the same through the background
// refresh, with a fake clock.
func TestValidatorOnValueInBackground(t *testing.T) {
	r := &recorder{}
	f := newFixture(t, secrets.WithValidator(r.validate, "db"), secrets.WithJitter(0))
	f.src.Set("db", `{"user":"u","password":"p1"}`)
	f.get("db#password")
	f.src.Set("db", `{"user":"u","password":"bad"}`)
	f.clock.Advance(time.Minute)
	f.waitRound()
	if got := f.get("db#password").Reveal(); got != "p1" {
		t.Fatalf("db#password = %q, want p1 kept", got)
	}
}
