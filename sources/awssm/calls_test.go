package awssm_test

import (
	"fmt"
	"testing"
)

// TestRefreshRoundOf100UnchangedSecrets counts the HTTP requests that reach
// the fake while a real Store refreshes 100 unchanged secrets in one
// background round: at most 5 (one BatchGetSecretValue per 20 secrets).
func TestRefreshRoundOf100UnchangedSecrets(t *testing.T) {
	srv, src := newSource(t)
	st, clk := newStore(t, src)
	ctx := ctxT(t)

	keys := make([]string, 100)
	for i := range keys {
		name := fmt.Sprintf("fleet/app-%03d", i)
		srv.Put(name, "first")
		srv.Put(name, "second") // a previous version too
		keys[i] = "awssm://" + name
		if _, err := st.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	loaded := srv.TotalCalls()
	srv.ResetCalls()

	clk.Advance(st.WorstCaseStaleness()) // past the TTL: every key is due
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))

	calls := srv.TotalCalls()
	t.Logf("first loads of 100 keys: %d calls; refresh round of 100 unchanged: %d calls %v", loaded, calls, srv.Calls())
	if calls > 5 {
		t.Fatalf("a refresh round of 100 unchanged secrets cost %d API calls (%v), want at most 5", calls, srv.Calls())
	}
	if n := srv.CallCount("BatchGetSecretValue"); n != 5 {
		t.Fatalf("BatchGetSecretValue calls = %d, want 5", n)
	}
	for _, k := range keys {
		v, err := st.Versions(ctx, k)
		if err != nil || v.Current.Reveal() != "second" || v.Previous.Reveal() != "first" {
			t.Fatalf("%s after the round: err %v", k, err)
		}
	}

	// The next round, with three of them rotated: one more call for each,
	// to read its new AWSPREVIOUS (the old current).
	sub := st.Subscribe()
	defer sub.Close()
	rotated := map[string]bool{}
	for _, i := range []int{3, 42, 99} {
		srv.Put(fmt.Sprintf("fleet/app-%03d", i), "third")
		rotated[keys[i]] = true
	}
	srv.ResetCalls()
	clk.Advance(st.WorstCaseStaleness())
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	if got, want := srv.TotalCalls(), 5+len(rotated); got != want {
		t.Fatalf("round with %d rotations cost %d calls %v, want %d", len(rotated), got, srv.Calls(), want)
	}
	changes := sub.Changes()
	if len(changes) != len(rotated) {
		t.Fatalf("changes = %+v, want the %d rotated keys", changes, len(rotated))
	}
	for _, c := range changes {
		if !rotated[c.Key] {
			t.Fatalf("unexpected change %+v", c)
		}
		v, err := st.Versions(ctx, c.Key)
		if err != nil || v.Current.Reveal() != "third" || v.Previous.Reveal() != "second" || v.Previous.Version() != c.OldVersion {
			t.Fatalf("%s after its rotation: err %v", c.Key, err)
		}
	}
}

// TestReloadOf100Secrets: a reload of many keys batches the current
// versions and, where AWSCURRENT has not moved since the Store read it,
// keeps the previous version it holds: 5 calls for 100 keys, of which 50
// were rotated before they were loaded, where a full read of each key costs
// 250 (see reload_calls_test.go for rotations after the load).
func TestReloadOf100Secrets(t *testing.T) {
	srv, src := newSource(t)
	st, _ := newStore(t, src)
	ctx := ctxT(t)
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("fleet/app-%03d", i)
		srv.Put(name, "first")
		if i%2 == 0 {
			srv.Put(name, "second")
		}
		if _, err := st.Get(ctx, "awssm://"+name); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCalls()
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	if calls["BatchGetSecretValue"] != 5 || srv.TotalCalls() != 5 {
		t.Fatalf("Reload of 100 keys: %v, want 5 BatchGetSecretValue", calls)
	}
	for _, k := range []string{"fleet/app-000", "fleet/app-001"} {
		v, err := st.Versions(ctx, "awssm://"+k)
		if err != nil {
			t.Fatal(err)
		}
		if k == "fleet/app-000" && (v.Current.Reveal() != "second" || v.Previous.Reveal() != "first") {
			t.Fatalf("%s: current %q previous %q", k, v.Current.Reveal(), v.Previous.Reveal())
		}
		if k == "fleet/app-001" && (v.Current.Reveal() != "first" || !v.Previous.IsZero()) {
			t.Fatalf("%s: never rotated, yet previous is set", k)
		}
	}
}

// TestRefreshRoundWithRotationsInProgress: a Store's round over 100 secrets
// of which 3 have a pending version costs the batch calls of the other 97
// and one DescribeSecret for each of the 3, and sees their rotations end.
func TestRefreshRoundWithRotationsInProgress(t *testing.T) {
	srv, src := newSource(t)
	st, clk := newStore(t, src)
	ctx := ctxT(t)
	c := srv.Client()
	keys := make([]string, 100)
	inRotation := map[int]bool{3: true, 42: true, 99: true}
	for i := range keys {
		name := fmt.Sprintf("fleet/app-%03d", i)
		srv.Put(name, "first")
		srv.Put(name, "second")
		if inRotation[i] {
			stage(t, c, name, token1, "third")
		}
		keys[i] = "awssm://" + name
		if _, err := st.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range inRotation {
		if s, _ := st.Status(keys[i]); s.PendingVersion != token1 {
			t.Fatalf("%s: pending version %q after the first load, want %q", keys[i], s.PendingVersion, token1)
		}
	}
	srv.ResetCalls()
	clk.Advance(st.WorstCaseStaleness())
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	if calls := srv.Calls(); calls["BatchGetSecretValue"] != 5 || calls["DescribeSecret"] != 3 || srv.TotalCalls() != 8 {
		t.Fatalf("round over 100 secrets, 3 in rotation: %v, want 5 BatchGetSecretValue and 3 DescribeSecret", calls)
	}

	// One rotation discarded, one finished: the next round costs the same
	// and reads no value.
	discarded, finished := "fleet/app-003", "fleet/app-042"
	moveStage(t, c, discarded, "AWSPENDING", token1, "")
	old, err := st.Versions(ctx, "awssm://"+finished)
	if err != nil {
		t.Fatal(err)
	}
	moveStage(t, c, finished, "AWSCURRENT", old.Current.Version(), token1)
	srv.ResetCalls()
	clk.Advance(st.WorstCaseStaleness())
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	if calls := srv.Calls(); calls["GetSecretValue"] != 0 || srv.TotalCalls() != 8 {
		t.Fatalf("round after a discard and a finish: %v, want 8 calls and no GetSecretValue", calls)
	}
	if s, _ := st.Status("awssm://" + discarded); s.PendingVersion != "" {
		t.Fatalf("discarded: pending version %q still known", s.PendingVersion)
	}
	v, err := st.Versions(ctx, "awssm://"+finished)
	if err != nil || v.Current.Reveal() != "third" || v.Previous.Version() != old.Current.Version() || !v.Pending.IsZero() {
		t.Fatalf("finished: current %q pending %q, err %v", v.Current.Reveal(), v.Pending.Version(), err)
	}
}
