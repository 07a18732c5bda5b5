package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// eventLog is an Observer that writes each event down as a line.
type eventLog struct {
	mu     sync.Mutex
	events []string
	raw    []any
}

func (r *eventLog) add(ev any, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, line)
	r.raw = append(r.raw, ev)
}

func (r *eventLog) observer() secrets.Observer {
	return secrets.Observer{
		Refresh: func(e secrets.RefreshEvent) {
			r.add(e, fmt.Sprintf("refresh %s %s class=%q initial=%v changed=%v", e.Key, e.Source, e.Class, e.Initial, e.Changed))
		},
		Reject: func(e secrets.RejectEvent) {
			r.add(e, fmt.Sprintf("reject %s %s version=%s class=%s", e.Key, e.Source, e.Version, secrets.ErrorClass(e.Err)))
		},
		Rotate: func(e secrets.RotateEvent) {
			r.add(e, fmt.Sprintf("rotate %s %s %s>%s adopted=%v", e.Key, e.Source, e.From, e.To, e.Adopted))
		},
		Reload: func(e secrets.ReloadEvent) {
			r.add(e, fmt.Sprintf("reload keys=%d changed=%d failed=%d class=%q", e.Keys, e.Changed, e.Failed, secrets.ErrorClass(e.Err)))
		},
		AuthRetry: func(e secrets.AuthRetryEvent) {
			r.add(e, fmt.Sprintf("auth %s %s", strings.Join(e.Keys, ","), e.Outcome))
		},
	}
}

// take returns the events recorded since the last call.
func (r *eventLog) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := strings.Join(r.events, "\n")
	r.events = nil
	return out
}

func expectEvents(t *testing.T, r *eventLog, want ...string) {
	t.Helper()
	if got, w := r.take(), strings.Join(want, "\n"); got != w {
		t.Fatalf("events:\n%s\nwant:\n%s", got, w)
	}
}

// TestObserverRefreshOutcomes: a first load, a refresh that finds nothing
// new, a rotation and a failure each report their outcome, by value and
// source, with the failure's class.
func TestObserverRefreshOutcomes(t *testing.T) {
	rec := &eventLog{}
	f := newFixture(t, secrets.WithObserver(rec.observer()))
	f.src.Set("db", "one")
	f.get("db")
	expectEvents(t, rec, `refresh db default class="" initial=true changed=true`)

	if err := f.store.Refresh(f.ctx(), "db"); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, rec, `refresh db default class="" initial=false changed=false`)

	f.src.Set("db", "two")
	if err := f.store.Refresh(f.ctx(), "db"); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, rec,
		"rotate db default 1>2 adopted=false",
		`refresh db default class="" initial=false changed=true`)

	f.src.fail("db", fmt.Errorf("backend down: %w", secrets.ErrTransient))
	if err := f.store.Refresh(f.ctx(), "db"); err == nil {
		t.Fatal("Refresh succeeded against a failing source")
	}
	expectEvents(t, rec, `refresh db default class="transient" initial=false changed=false`)

	// A background round reports as a Refresh does.
	f.src.fail("db", nil)
	f.advanceTo(f.status("db").NextRefresh)
	f.waitRound()
	expectEvents(t, rec, `refresh db default class="" initial=false changed=false`)
}

// TestObserverFirstLoadFailure: a first load that fails is reported as an
// initial failure, with its class.
func TestObserverFirstLoadFailure(t *testing.T) {
	rec := &eventLog{}
	f := newFixture(t, secrets.WithObserver(rec.observer()))
	if _, err := f.store.Get(f.ctx(), "missing"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	expectEvents(t, rec, `refresh missing default class="not_found" initial=true changed=false`)
}

// TestObserverRejection: a candidate refused by a validator is reported
// twice: as a refresh that failed with class "rejected", and as a rejection
// naming the candidate's version. Nothing rotates.
func TestObserverRejection(t *testing.T) {
	rec := &eventLog{}
	refuse := func(ctx context.Context, key string, c secrets.Versions) error {
		if c.Current.Reveal() == "bad" {
			return errors.New("login refused")
		}
		return nil
	}
	f := newFixture(t, secrets.WithObserver(rec.observer()), secrets.WithValidator(refuse, "db"))
	f.src.Set("db", "good")
	f.get("db")
	rec.take()
	f.src.Set("db", "bad")
	if err := f.store.Refresh(f.ctx(), "db"); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Refresh: %v, want ErrRejected", err)
	}
	expectEvents(t, rec,
		`refresh db default class="rejected" initial=false changed=false`,
		"reject db default version=2 class=rejected")
}

// TestObserverReload: a reload reports its end, with how many values it
// fetched, changed or failed, and each value's outcome before it; a reload
// that fails reports the failures only.
func TestObserverReload(t *testing.T) {
	rec := &eventLog{}
	refuse := func(ctx context.Context, key string, c secrets.Versions) error {
		if c.Current.Reveal() == "bad" {
			return errors.New("refused")
		}
		return nil
	}
	f := newFixture(t, secrets.WithObserver(rec.observer()), secrets.WithValidator(refuse, "b"))
	f.src.Set("a", "a1")
	f.src.Set("b", "b1")
	f.get("a")
	f.get("b")
	rec.take()

	f.src.Set("a", "a2")
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(rec.take(), "\n")
	if len(got) != 4 || got[3] != `reload keys=2 changed=1 failed=0 class=""` {
		t.Fatalf("events of a reload:\n%s", strings.Join(got, "\n"))
	}
	want := map[string]bool{
		`refresh a default class="" initial=false changed=true`:  true,
		`refresh b default class="" initial=false changed=false`: true,
		"rotate a default 1>3 adopted=false":                     true,
	}
	for _, g := range got[:3] {
		if !want[g] {
			t.Fatalf("unexpected event %q in:\n%s", g, strings.Join(got, "\n"))
		}
	}

	f.src.Set("a", "a3")
	f.src.Set("b", "bad")
	if err := f.store.Reload(f.ctx()); err == nil {
		t.Fatal("Reload applied a rejected candidate")
	}
	expectEvents(t, rec,
		`refresh b default class="rejected" initial=false changed=false`,
		"reject b default version=5 class=rejected",
		`reload keys=2 changed=0 failed=1 class="rejected"`)
}

// TestObserverAuthRetryOutcomes: each way an authentication failure ends is
// reported once, with the keys the call read.
func TestObserverAuthRetryOutcomes(t *testing.T) {
	t.Run("refreshed", func(t *testing.T) {
		rec := &eventLog{}
		f := newFixture(t, secrets.WithObserver(rec.observer()))
		f.src.Set("db", "old")
		f.get("db")
		db := &database{password: "new"}
		f.src.Set("db", "new") // stored and set, not yet polled
		rec.take()
		h := secrets.WrapTool(f.store, query(f.store, db))
		if _, _, err := h(f.ctx(), struct{}{}, struct{}{}); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); !strings.HasSuffix(got, "auth db refreshed") {
			t.Fatalf("events:\n%s", got)
		}
	})
	t.Run("waited", func(t *testing.T) {
		rec := &eventLog{}
		f := newFixture(t, secrets.WithObserver(rec.observer()))
		f.src.Set("db", "old")
		f.get("db")
		db := &database{password: "new"} // ALTER ROLE first
		h := secrets.WrapTool(f.store, query(f.store, db))
		done := make(chan error, 1)
		go func() { _, _, err := h(f.ctx(), struct{}{}, struct{}{}); done <- err }()
		waitParked(t, 1)
		f.src.Set("db", "new")
		f.clock.Advance(time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); !strings.HasSuffix(got, "auth db waited") {
			t.Fatalf("events:\n%s", got)
		}
	})
	t.Run("gave_up", func(t *testing.T) {
		rec := &eventLog{}
		f := newFixture(t, secrets.WithObserver(rec.observer()), secrets.WithAuthWait(0))
		f.src.Set("db", "old")
		f.get("db")
		db := &database{password: "revoked"}
		h := secrets.WrapTool(f.store, query(f.store, db), secrets.RefreshKeys("other"))
		if _, _, err := h(f.ctx(), struct{}{}, struct{}{}); err == nil {
			t.Fatal("the call succeeded with a revoked password")
		}
		if got := rec.take(); !strings.HasSuffix(got, "auth db,other gave_up") {
			t.Fatalf("events:\n%s", got)
		}
	})
	t.Run("adopted", func(t *testing.T) {
		rec := &eventLog{}
		src := &stagedSrc{}
		src.set("db", "old", "", "")
		st, err := secrets.New(src, secrets.WithObserver(rec.observer()))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := context.Background()
		if _, err := st.Get(ctx, "db"); err != nil {
			t.Fatal(err)
		}
		src.set("db", "old", "", "new") // staged, and set downstream
		db := &database{password: "new"}
		h := secrets.WrapTool(st, query(st, db))
		if _, _, err := h(ctx, struct{}{}, struct{}{}); err != nil {
			t.Fatal(err)
		}
		got := rec.take()
		if !strings.Contains(got, "rotate db default v-old>v-new adopted=true") || !strings.HasSuffix(got, "auth db adopted") {
			t.Fatalf("events:\n%s", got)
		}
		// The rotation finishing is no further swap.
		src.set("db", "new", "old", "")
		if err := st.Refresh(ctx, "db"); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); strings.Contains(got, "rotate") {
			t.Fatalf("events after the rotation finished:\n%s", got)
		}
	})
}

// TestObserverSeesNoValue: no event holds a secret's value, in any form the
// fmt package gives it.
func TestObserverSeesNoValue(t *testing.T) {
	rec := &eventLog{}
	refuse := func(ctx context.Context, key string, c secrets.Versions) error {
		if strings.HasPrefix(c.Current.Reveal(), "hunter2-bad") {
			return errors.New("refused")
		}
		return nil
	}
	f := newFixture(t, secrets.WithObserver(rec.observer()), secrets.WithValidator(refuse))
	f.src.Set("db", "hunter2-first")
	f.get("db")
	f.src.Set("db", "hunter2-second")
	_ = f.store.Refresh(f.ctx(), "db")
	f.src.Set("db", "hunter2-bad")
	_ = f.store.Reload(f.ctx())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.raw) < 5 {
		t.Fatalf("only %d events", len(rec.raw))
	}
	for _, ev := range rec.raw {
		for _, form := range []string{fmt.Sprintf("%v", ev), fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev)} {
			if strings.Contains(form, "hunter2") {
				t.Fatalf("an event shows a value: %s", form)
			}
		}
	}
}

// TestObserverRunsOutsideTheLock: an observer may read the Store (its
// functions run after the Store's lock is released), and one that panics
// loses its event but breaks nothing, nor the observers after it.
func TestObserverRunsOutsideTheLock(t *testing.T) {
	var st *secrets.Store
	var mu sync.Mutex
	var seen []string
	reader := secrets.Observer{Refresh: func(e secrets.RefreshEvent) {
		s, ok := st.Status(e.Key)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s loaded=%v known=%v", e.Key, s.Loaded, ok))
		mu.Unlock()
	}}
	panicky := secrets.Observer{Refresh: func(secrets.RefreshEvent) { panic("observer bug") }}
	rec := &eventLog{}
	f := newFixture(t, secrets.WithObserver(panicky), secrets.WithObserver(reader), secrets.WithObserver(rec.observer()))
	st = f.store
	f.src.Set("db", "v")
	f.get("db")
	if err := f.store.Refresh(f.ctx(), "db"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(seen, "; ")
	mu.Unlock()
	// The first event is reported before Get registers the key.
	if got != "db loaded=false known=false; db loaded=true known=true" {
		t.Fatalf("the observer read %q", got)
	}
	if n := len(strings.Split(rec.take(), "\n")); n != 2 {
		t.Fatalf("%d events reached the observer after the panicking one, want 2", n)
	}
}
