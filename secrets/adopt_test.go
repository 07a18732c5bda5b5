package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// adoptStore builds a Store over src with a fake clock, a fixed random fraction
// and the given options.
func adoptStore(t *testing.T, src secrets.Source, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(epoch)
	opts = append([]secrets.Option{secrets.WithClock(clk), secrets.WithTTL(time.Minute)}, opts...)
	st, err := secrets.New(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	secrets.SetRand(st, func() float64 { return 0.5 })
	t.Cleanup(func() { st.Close() })
	return st, clk
}

func adoptCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func heardChanges(sub *secrets.Subscription) string {
	var out []string
	for _, c := range sub.Changes() {
		out = append(out, c.Key+":"+c.OldVersion+">"+c.NewVersion)
	}
	return strings.Join(out, ",")
}

// A change of the pending version alone changes nothing served: a call
// whose View predates it does not spend its one retry on the same password,
// but forces the refresh that adopts the pending version.
func TestPendingOnlyChangeIsNoNewerCredential(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "")
	db := &database{password: "old"}
	validate := func(ctx context.Context, key string, c secrets.Versions) error {
		return db.login(c.Current.Reveal())
	}
	st, _ := adoptStore(t, src, secrets.WithValidator(validate, "db"))
	ctx := adoptCtx(t)
	if _, err := st.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	proceed := make(chan struct{})
	first := true
	var used []string
	h := secrets.WrapTool(st, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		pw, err := secrets.ViewFrom(ctx, st).Get(ctx, "db")
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		if first {
			first = false
			close(read)
			<-proceed
		}
		used = append(used, pw.Reveal())
		return struct{}{}, struct{}{}, db.login(pw.Reveal())
	})
	done := make(chan error, 1)
	go func() { _, _, err := h(ctx, struct{}{}, struct{}{}); done <- err }()
	<-read
	// createSecret: a poll sees the staged version (nothing served changes).
	src.set("db", "old", "", "new")
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	db.set("new") // setSecret: the database takes it
	close(proceed)
	if err := <-done; err != nil {
		t.Fatalf("the call failed (%v); passwords used: %v — the retry went to the same password", err, used)
	}
}

// A call that read two values and failed does not tell which one failed:
// neither's pending version (an unrelated rotation, staged and not yet set
// upstream) is adopted.
func TestAuthFailureOfTwoValuesAdoptsNeither(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "")
	src.set("api", "tokA", "", "tokB") // api's rotation: staged, not set upstream
	db := &database{password: "changed by hand"}
	st, _ := adoptStore(t, src, secrets.WithAuthWait(0))
	ctx := adoptCtx(t)
	sub := st.Subscribe()
	defer sub.Close()
	h := secrets.WrapTool(st, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		v := secrets.ViewFrom(ctx, st)
		if _, err := v.Get(ctx, "api"); err != nil {
			return struct{}{}, struct{}{}, err
		}
		pw, err := v.Get(ctx, "db")
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		return struct{}{}, struct{}{}, db.login(pw.Reveal())
	})
	if _, _, err := h(ctx, struct{}{}, struct{}{}); !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v, want the db's authentication error", err)
	}
	if got := versionsOf(t, st, "api"); got != "tokA//tokB" {
		t.Fatalf("api serves %s, want tokA with tokB still pending: a db failure adopted api's pending version (subscribers heard %q)", got, heardChanges(sub))
	}
}

// A failure reported during a rotation that was then rolled back is no
// evidence against the next rotation's staged value: it is not adopted
// before anything fails again.
func TestFailureDoesNotOutliveItsRotation(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "new1")
	db := &database{password: "new1"} // setSecret of rotation 1 ran
	st, _ := adoptStore(t, src, secrets.WithAuthWait(0))
	ctx := adoptCtx(t)
	h := secrets.WrapTool(st, query(st, db))
	if _, _, err := h(ctx, struct{}{}, struct{}{}); err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	if got := versionsOf(t, st, "db"); got != "new1/old/" {
		t.Fatalf("serving %s, want new1 adopted", got)
	}
	// Rotation 1 is undone.
	src.set("db", "old", "", "")
	db.set("old")
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "old//" {
		t.Fatalf("serving %s after the rollback", got)
	}
	// Rotation 2 stages a value; nothing has failed since the rollback, and
	// the database still takes only old.
	src.set("db", "old", "", "new2")
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "old//new2" {
		t.Fatalf("serving %s, want old with new2 pending: a failure from before the rollback adopted rotation 2's value", got)
	}
}

// A pending version the validators refuse, tried on the evidence of a
// failure, is no failure of a value the source keeps returning: Refresh and
// Reload succeed, the Reload's other keys are applied, and the key does not
// go stale.
func TestRefusedAdoptionIsNoFailure(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "new1")
	src.set("other", "a1", "", "")
	db := &database{password: "new1"}
	validate := func(ctx context.Context, key string, c secrets.Versions) error {
		return db.login(c.Current.Reveal())
	}
	st, clk := adoptStore(t, src, secrets.WithAuthWait(0), secrets.WithValidator(validate, "db"),
		secrets.WithMaxStale(3*time.Minute))
	ctx := adoptCtx(t)
	if _, err := st.Get(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	h := secrets.WrapTool(st, query(st, db))
	if _, _, err := h(ctx, struct{}{}, struct{}{}); err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	// Rotation 1 is undone, rotation 2 stages new2 but has not set it yet.
	src.set("db", "old", "", "")
	db.set("old")
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	src.set("db", "old", "", "new2")
	src.set("other", "a2", "", "")
	var errs []string
	if err := st.Reload(ctx); err != nil {
		errs = append(errs, "Reload: "+err.Error())
	}
	if got := versionsOf(t, st, "other"); got != "a2//" {
		errs = append(errs, "other serves "+got+" after the Reload, want a2")
	}
	for range 4 {
		clk.Advance(time.Minute)
		if err := st.Refresh(ctx, "db"); err != nil {
			errs = append(errs, "Refresh: "+err.Error())
		}
	}
	if _, err := st.Get(ctx, "db"); err != nil {
		errs = append(errs, "Get: "+err.Error())
		if errors.Is(err, secrets.ErrStale) {
			errs = append(errs, "(fails closed though the source serves old, which works)")
		}
	}
	if len(errs) > 0 {
		t.Fatalf("a healthy key fails:\n%s", strings.Join(errs, "\n"))
	}
}

// With no validator and a credential that neither version opens, the Store
// does not swap between current and pending at every failure.
func TestNoFlappingWhenBothVersionsFail(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "new") // a stuck rotation: staged, never set
	db := &database{password: "neither"}
	st, clk := adoptStore(t, src, secrets.WithAuthWait(0))
	ctx := adoptCtx(t)
	if _, err := st.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe()
	defer sub.Close()
	h := secrets.WrapTool(st, query(st, db))
	var served, heardEach []string
	for range 4 {
		clk.Advance(2 * time.Second) // a forced refresh is allowed again
		_, _, _ = h(ctx, struct{}{}, struct{}{})
		served = append(served, versionsOf(t, st, "db"))
		if h := heardChanges(sub); h != "" {
			heardEach = append(heardEach, h)
		}
	}
	heard := strings.Join(heardEach, ",")
	if n := strings.Count(heard, ">"); n > 1 {
		t.Fatalf("the backend never changed, yet the Store served %v and subscribers heard %d changes: %s", served, n, heard)
	}
}
