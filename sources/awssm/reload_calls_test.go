package awssm_test

import (
	"fmt"
	"testing"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
)

// loadFleet puts n secrets, each rotated once ("first" is AWSPREVIOUS,
// "second" AWSCURRENT), loads them into st and returns their keys, names and
// the version ids of "second".
func loadFleet(t *testing.T, srv *smtest.Server, st *secrets.Store, n int) (keys, names, seconds []string) {
	t.Helper()
	ctx := ctxT(t)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("fleet/app-%03d", i)
		srv.Put(name, "first")
		seconds = append(seconds, srv.Put(name, "second"))
		names = append(names, name)
		keys = append(keys, "awssm://"+name)
		if _, err := st.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	return keys, names, seconds
}

// TestReloadCallsUnchanged counts the calls that reach the wire-protocol
// server while a Store reloads 100 unchanged secrets: the 5
// BatchGetSecretValue calls of a refresh round, which read every current
// value again, where a full read of the same keys (Refresh, and Reload
// before forced requests) costs a DescribeSecret and a GetSecretValue more
// per key.
func TestReloadCallsUnchanged(t *testing.T) {
	srv, src := newSource(t)
	st, clk := newStore(t, src)
	ctx := ctxT(t)
	keys, _, _ := loadFleet(t, srv, st, 100)

	srv.ResetCalls()
	clk.Advance(st.WorstCaseStaleness())
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	round := srv.TotalCalls()

	srv.ResetCalls()
	if err := st.Refresh(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	full, fullCalls := srv.TotalCalls(), srv.Calls()

	srv.ResetCalls()
	clk.Advance(1)
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	reload, reloadCalls := srv.TotalCalls(), srv.Calls()
	t.Logf("100 unchanged secrets: background round %d calls; Reload %d calls %v; full read (Refresh) %d calls %v",
		round, reload, reloadCalls, full, fullCalls)
	if reload > 10 || reloadCalls["BatchGetSecretValue"] != 5 || reload != 5 {
		t.Fatalf("Reload of 100 unchanged secrets cost %d calls %v, want the 5 BatchGetSecretValue of a round", reload, reloadCalls)
	}
	for _, k := range keys {
		s, _ := st.Status(k)
		if !s.Loaded || s.Failures != 0 || !s.FetchedAt.Equal(clk.Now()) {
			t.Fatalf("%s after the reload: %+v, want fetched now", k, s)
		}
		v, err := st.Versions(ctx, k)
		if err != nil || v.Current.Reveal() != "second" || v.Previous.Reveal() != "first" {
			t.Fatalf("%s after the reload: err %v", k, err)
		}
	}
}

// TestReloadCallsRotated: a Store reloads 100 secrets of which 10 rotated
// (AWSCURRENT moved to "third"). Each rotated secret costs, beyond its
// share of the batch, one DescribeSecret and one GetSecretValue of its new
// AWSPREVIOUS, read again rather than taken from what the Store held; the
// previous version served is the old current one.
func TestReloadCallsRotated(t *testing.T) {
	srv, src := newSource(t)
	st, _ := newStore(t, src)
	ctx := ctxT(t)
	keys, names, seconds := loadFleet(t, srv, st, 100)
	sub := st.Subscribe()
	defer sub.Close()
	rotated := map[string]string{} // key → id of the old current
	for i := 5; i < 100; i += 10 {
		srv.Put(names[i], "third")
		rotated[keys[i]] = seconds[i]
	}

	srv.ResetCalls()
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	calls, total := srv.Calls(), srv.TotalCalls()
	perMoved := float64(total-calls["BatchGetSecretValue"]) / float64(len(rotated))
	t.Logf("100 secrets, %d rotated: Reload %d calls %v; %.1f calls per rotated secret beyond the batch",
		len(rotated), total, calls, perMoved)
	if calls["BatchGetSecretValue"] != 5 || calls["DescribeSecret"] != len(rotated) || calls["GetSecretValue"] != len(rotated) || total != 5+2*len(rotated) {
		t.Fatalf("Reload with %d rotated secrets: %v, want 5 BatchGetSecretValue and one DescribeSecret and one GetSecretValue per rotated secret", len(rotated), calls)
	}
	if changes := sub.Changes(); len(changes) != len(rotated) {
		t.Fatalf("changes %+v, want the %d rotated keys", changes, len(rotated))
	}
	for i, k := range keys {
		v, err := st.Versions(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if old, ok := rotated[k]; ok {
			if v.Current.Reveal() != "third" || v.Previous.Reveal() != "second" || v.Previous.Version() != old {
				t.Fatalf("%s after its rotation: current %q, previous %q (version %q, want %q)",
					k, v.Current.Reveal(), v.Previous.Reveal(), v.Previous.Version(), old)
			}
			continue
		}
		if v.Current.Reveal() != "second" || v.Current.Version() != seconds[i] || v.Previous.Reveal() != "first" {
			t.Fatalf("%s, not rotated: current %q previous %q", k, v.Current.Reveal(), v.Previous.Reveal())
		}
	}
}

// TestReloadPreviousMovedAlone pins what a reload does not see: AWSPREVIOUS
// moved to another version while AWSCURRENT stayed (an operator's hand;
// rotations move both). A batch shows the labels of the AWSCURRENT version
// only, so the reload keeps the previous version the Store held, at no call
// beyond the batch; a Refresh of the key, which asks DescribeSecret, serves
// the version that now carries AWSPREVIOUS.
func TestReloadPreviousMovedAlone(t *testing.T) {
	srv, src := newSource(t)
	st, _ := newStore(t, src)
	ctx := ctxT(t)
	keys, names, _ := loadFleet(t, srv, st, 3)
	first := srv.Put(names[0], "zeroth", "AWSPREVIOUS") // a version of no rotation
	srv.Put(names[0], "third")
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// "third" is current, "second" previous; now move AWSPREVIOUS alone.
	v, _ := st.Versions(ctx, keys[0])
	moveStage(t, srv.Client(), names[0], "AWSPREVIOUS", v.Previous.Version(), first)

	srv.ResetCalls()
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	t.Logf("AWSPREVIOUS moved alone: Reload of 3 keys %d calls %v", srv.TotalCalls(), calls)
	if srv.TotalCalls() != 1 || calls["BatchGetSecretValue"] != 1 {
		t.Fatalf("Reload after AWSPREVIOUS moved alone: %v, want one BatchGetSecretValue", calls)
	}
	if v, _ := st.Versions(ctx, keys[0]); v.Current.Reveal() != "third" || v.Previous.Reveal() != "second" {
		t.Fatalf("after the reload: current %q previous %q, want the held third and second", v.Current.Reveal(), v.Previous.Reveal())
	}
	if err := st.Refresh(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Versions(ctx, keys[0]); v.Current.Reveal() != "third" || v.Previous.Reveal() != "zeroth" || v.Previous.Version() != first {
		t.Fatalf("after Refresh: current %q previous %q, want third and zeroth", v.Current.Reveal(), v.Previous.Reveal())
	}
}

// TestForcedFetchManyRereads calls FetchMany as a reload does, with known
// versions whose values are not the backend's (a cache gone wrong, under the
// right version ids): the answer is never Unchanged, and its current value
// is the backend's. Where AWSCURRENT moved, the previous version is read
// again too.
func TestForcedFetchManyRereads(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	idA := srv.Put("forced/a", "a-current")
	prevB := srv.Put("forced/b", "b-old")
	srv.Put("forced/b", "b-new")
	reqs := []secrets.Request{
		{Key: "forced/a", Forced: true, Known: secrets.Versions{Current: secrets.NewSecretString("forced/a", idA, "doctored")}},
		{Key: "forced/b", Forced: true, Known: secrets.Versions{Current: secrets.NewSecretString("forced/b", prevB, "doctored")}},
	}
	res := src.FetchMany(ctx, reqs)
	if r := res[0]; r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "a-current" || r.Versions.Current.Version() != idA {
		t.Fatalf("unchanged key: unchanged=%v err=%v current %q", r.Unchanged, r.Err, r.Versions.Current.Reveal())
	}
	if r := res[1]; r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "b-new" || r.Versions.Previous.Reveal() != "b-old" || r.Versions.Previous.Version() != prevB {
		t.Fatalf("rotated key: unchanged=%v err=%v current %q previous %q", r.Unchanged, r.Err, r.Versions.Current.Reveal(), r.Versions.Previous.Reveal())
	}
}

// TestForcedFetchManyLabelsDisagree: when the labels a batch returns for
// the AWSCURRENT version disagree with the known versions (AWSPREVIOUS on the
// current version itself), a forced request asks DescribeSecret rather than
// keep the known previous version.
func TestForcedFetchManyLabelsDisagree(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	var reqs []secrets.Request
	for _, name := range []string{"odd/a", "odd/b"} {
		srv.Put(name, "one")
		srv.Put(name, "two")
		reqs = append(reqs, secrets.Request{Key: name, Forced: true})
	}
	for i, r := range src.FetchMany(ctx, reqs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		reqs[i].Known = r.Versions
	}
	known := reqs[0].Known
	moveStage(t, srv.Client(), "odd/a", "AWSPREVIOUS", known.Previous.Version(), known.Current.Version())
	srv.ResetCalls()
	res := src.FetchMany(ctx, reqs)
	if calls := srv.Calls(); calls["BatchGetSecretValue"] != 1 || calls["DescribeSecret"] != 1 {
		t.Fatalf("calls %v, want one batch and one DescribeSecret for the key whose labels disagree", calls)
	}
	if r := res[0]; r.Err != nil || r.Versions.Previous.Version() == known.Previous.Version() {
		t.Fatalf("labels disagree: err %v, previous %q kept", r.Err, r.Versions.Previous.Version())
	}
	if r := res[1]; r.Err != nil || r.Versions.Previous.Reveal() != "one" {
		t.Fatalf("labels agree: err %v", r.Err)
	}
}
