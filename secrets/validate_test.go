package secrets_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

func TestValidatorTestsBeforeSwap(t *testing.T) {
	var seen []secrets.Versions
	var mu sync.Mutex
	v := func(_ context.Context, key string, cand secrets.Versions) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, cand)
		if cand.Current.Reveal() == "bad" {
			return errors.New("login failed")
		}
		return nil
	}
	f := newFixture(t, secrets.WithValidator(v, "db"), secrets.WithJitter(0))
	f.src.Set("db", "pw1")
	f.src.Set("other", "o1")
	f.get("db")
	f.get("other")
	if len(seen) != 0 {
		t.Fatal("validator ran on a first load")
	}

	f.src.Set("db", "bad")
	f.src.Set("other", "o2")
	f.clock.Advance(time.Minute)
	f.waitRound()
	if got := f.get("db").Reveal(); got != "pw1" {
		t.Fatalf("a rejected candidate was applied: Get = %q", got)
	}
	if got := f.get("other").Reveal(); got != "o2" {
		t.Fatalf("a key without validator was not refreshed: %q", got)
	}
	st := f.status("db")
	if !errors.Is(st.LastError, secrets.ErrRejected) || st.Failures != 1 {
		t.Fatalf("status after rejection: %v, failures %d", st.LastError, st.Failures)
	}
	if d := st.NextRefresh.Sub(f.clock.Now()); d != 500*time.Millisecond {
		t.Fatalf("after a rejection the retry is in %v, want the backoff", d)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Current.Reveal() != "bad" || seen[0].Previous.Reveal() != "pw1" || seen[0].Current.Key() != "db" {
		t.Fatalf("validator saw %d candidates; want one with current bad and previous pw1", len(seen))
	}
	mu.Unlock()

	f.src.Set("db", "pw2")
	f.advanceTo(st.NextRefresh)
	f.waitRound()
	if got := f.get("db").Reveal(); got != "pw2" {
		t.Fatalf("a good candidate was not applied: %q", got)
	}
}

func TestValidatorOnRefreshAndReload(t *testing.T) {
	reject := atomic.Bool{}
	calls := atomic.Int32{}
	v := func(context.Context, string, secrets.Versions) error {
		calls.Add(1)
		if reject.Load() {
			return errors.New("no")
		}
		return nil
	}
	f := newFixture(t, secrets.WithValidator(v))
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", "2")
	reject.Store(true)
	if err := f.store.Refresh(f.ctx(), "k"); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Refresh: %v", err)
	}
	if err := f.store.Reload(f.ctx()); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Reload: %v", err)
	}
	if got := f.get("k").Reveal(); got != "1" {
		t.Fatalf("Get = %q after rejections", got)
	}
	reject.Store(false)
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := f.get("k").Reveal(); got != "2" {
		t.Fatalf("Get = %q after an accepted reload", got)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("validator calls = %d, want 3", c)
	}
	// An unchanged value is not validated again.
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("an unchanged value was validated again (%d calls)", c)
	}
}

func TestValidatorPanicRejects(t *testing.T) {
	f := newFixture(t, secrets.WithValidator(func(_ context.Context, _ string, c secrets.Versions) error {
		panic(c.Current.Reveal())
	}))
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", canary)
	err := f.store.Refresh(f.ctx(), "k")
	if !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	assertNoCanary(t, err.Error())
}

func TestMissingFieldKeepsOldValue(t *testing.T) {
	f := newFixture(t)
	f.src.Set("app", `{"user":"u1","password":"p1"}`)
	if got := f.get("app#password").Reveal(); got != "p1" {
		t.Fatalf("field = %q", got)
	}
	if got := f.get("app#/user").Reveal(); got != "u1" {
		t.Fatalf("pointer field = %q", got)
	}
	if _, err := f.store.Get(f.ctx(), "app#nope"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("missing field: err = %v", err)
	}
	if c := f.src.count("app"); c != 1 {
		t.Fatalf("fields of one value cost %d fetches, want 1", c)
	}
	f.src.Set("app", `{"user":"u2"}`)
	err := f.store.Refresh(f.ctx(), "app#password")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to a value without a served field: err = %v", err)
	}
	if got := f.get("app#password").Reveal(); got != "p1" {
		t.Fatalf("the old value was dropped: %q", got)
	}
	if got := f.get("app#/user").Reveal(); got != "u1" {
		t.Fatalf("a reload applied half-way: user = %q", got)
	}
	f.src.Set("app", `{"user":"u3","password":"p3"}`)
	if err := f.store.Refresh(f.ctx(), "app#password"); err != nil {
		t.Fatal(err)
	}
	v, _ := f.store.Versions(f.ctx(), "app#password")
	if v.Current.Reveal() != "p3" || v.Previous.Reveal() != "" || !v.Previous.IsZero() {
		// The value before, {"user":"u2"}, has no password: no previous.
		t.Fatalf("versions of the field: %q / zero previous %v", v.Current.Reveal(), v.Previous.IsZero())
	}
}
