package secrets_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// gatedValidator holds the first validation of one key's candidate until
// released, and rejects every candidate whose value is "bad".
type gatedValidator struct {
	key     string
	value   string // the candidate value that is held
	entered chan struct{}
	gate    chan struct{}

	mu   sync.Mutex
	once bool
	seen map[string][]string // key → candidate values validated
}

func newGatedValidator(key, value string) *gatedValidator {
	return &gatedValidator{key: key, value: value, entered: make(chan struct{}), gate: make(chan struct{}), seen: map[string][]string{}}
}

func (g *gatedValidator) validate(ctx context.Context, key string, c secrets.Versions) error {
	g.mu.Lock()
	g.seen[key] = append(g.seen[key], c.Current.Reveal())
	hold := key == g.key && c.Current.Reveal() == g.value && !g.once
	if hold {
		g.once = true
	}
	g.mu.Unlock()
	if hold {
		close(g.entered)
		<-g.gate
	}
	if c.Current.Reveal() == "bad" {
		return errors.New("login failed")
	}
	return nil
}

func (g *gatedValidator) saw(key string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen[key]...)
}

// TestFieldKeyFirstReadDuringValidation: a field key first read while a
// candidate of its value is being validated (for the other keys read so
// far) must not be served that candidate unless it passes for this key too.
func TestFieldKeyFirstReadDuringValidation(t *testing.T) {
	for _, tc := range []struct {
		name, next string
	}{
		{"rejected for the new key", `{"user":"u","password":"bad"}`},
		{"field gone from the candidate", `{"user":"u2"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatedValidator("db#user", "u")
			if tc.next == `{"user":"u2"}` {
				g.value = "u2"
			}
			f := newFixture(t, secrets.WithValidator(g.validate))
			f.src.Set("db", `{"user":"u","password":"p1"}`)
			f.get("db#user")

			f.src.Set("db", tc.next)
			done := make(chan error, 1)
			go func() { done <- f.store.Refresh(f.ctx(), "db#user") }()
			<-g.entered // db#user's candidate is being validated
			if got := f.get("db#password").Reveal(); got != "p1" {
				t.Fatalf("first read during validation: %q, want the served p1", got)
			}
			close(g.gate)
			err := <-done
			if got := f.get("db#password").Reveal(); got != "p1" {
				t.Fatalf("db#password = %q after the refresh; its candidate was never acceptable (Refresh: %v)", got, err)
			}
			if err == nil {
				t.Fatal("Refresh returned nil but did not apply its candidate")
			}
			if tc.next == `{"user":"u","password":"bad"}` {
				if saw := g.saw("db#password"); len(saw) != 1 || saw[0] != "bad" {
					t.Fatalf("validator saw %q for db#password, want the candidate once", saw)
				}
			}
		})
	}
}

// TestReloadAppliesWholeWhenANewerFetchFails: while Reload's validators
// run, a newer fetch of one of its keys fails. Reload must apply all its
// keys (the failure does not make its value wrong) or none, and say which.
func TestReloadAppliesWholeWhenANewerFetchFails(t *testing.T) {
	g := newGatedValidator("a", "a2")
	f := newFixture(t, secrets.WithValidator(g.validate))
	f.src.Set("a", "a1")
	f.src.Set("b", "b1")
	f.get("a")
	f.get("b")

	f.src.Set("a", "a2")
	f.src.Set("b", "b2")
	done := make(chan error, 1)
	go func() { done <- f.store.Reload(f.ctx()) }()
	<-g.entered
	f.src.fail("a", secrets.ErrTransient)
	if err := f.store.Refresh(f.ctx(), "a"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("the newer fetch: %v, want it to fail", err)
	}
	close(g.gate)
	err := <-done
	a, b := f.get("a").Reveal(), f.get("b").Reveal()
	switch {
	case err == nil && a == "a2" && b == "b2":
	case err != nil && a == "a1" && b == "b1":
	default:
		t.Fatalf("Reload returned %v with a=%s b=%s: half applied", err, a, b)
	}
}

// TestRefreshKeepsItsValueWhenANewerFetchFails: the same for Refresh,
// which must not drop a validated value and return nil.
func TestRefreshKeepsItsValueWhenANewerFetchFails(t *testing.T) {
	g := newGatedValidator("a", "a2")
	f := newFixture(t, secrets.WithValidator(g.validate))
	f.src.Set("a", "a1")
	f.src.Set("x", "x1")
	f.get("a")
	f.get("x")

	f.src.Set("a", "a2")
	done := make(chan error, 1)
	go func() { done <- f.store.Refresh(f.ctx(), "a") }()
	<-g.entered
	f.src.fail("a", secrets.ErrTransient)
	if err := f.store.Refresh(f.ctx(), "a", "x"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("the newer fetch: %v, want it to fail", err)
	}
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.get("a").Reveal(); got != "a2" {
		t.Fatalf("Refresh returned nil but a = %q, want its validated a2", got)
	}
}

// TestReloadAppliesWholeWhenAnOlderRefreshLands: an older Refresh applies
// its value between Reload's validation and its swap. Reload's verdict for
// that key was reached against a value no longer served: it must examine
// the key again, not drop it and apply the rest.
func TestReloadAppliesWholeWhenAnOlderRefreshLands(t *testing.T) {
	held := newGatedValidator("a", "a2") // the older Refresh
	var reloadGate *gatedValidator       // Reload, on b
	reloadGate = newGatedValidator("b", "b2")
	f := newFixture(t, secrets.WithValidator(held.validate), secrets.WithValidator(reloadGate.validate))
	f.src.Set("a", "a1")
	f.src.Set("b", "b1")
	f.get("a")
	f.get("b")

	f.src.Set("a", "a2")
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.store.Refresh(f.ctx(), "a") }()
	<-held.entered // the Refresh fetched a2 and holds

	f.src.Set("a", "a3")
	f.src.Set("b", "b2")
	reloaded := make(chan error, 1)
	go func() { reloaded <- f.store.Reload(f.ctx()) }()
	<-reloadGate.entered // Reload has validated a3 and holds on b2

	close(held.gate)
	if err := <-refreshed; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	close(reloadGate.gate)
	err := <-reloaded
	a, b := f.get("a").Reveal(), f.get("b").Reveal()
	switch {
	case err == nil && a == "a3" && b == "b2":
	case err != nil && b == "b1":
	default:
		t.Fatalf("Reload returned %v with a=%s b=%s: half applied", err, a, b)
	}
}
