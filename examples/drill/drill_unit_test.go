package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

// TestTally counts calls, failures, sessions and the latency inside and
// outside rotation windows from the load client's records.
func TestTally(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ok := func(start, dur float64, pid int32, session float64) wire.Call {
		return wire.Call{Start: at(start), End: at(start + dur), User: "app_a", PID: pid, SessionStart: at(session)}
	}
	calls := []wire.Call{
		ok(1, 0.010, 100, 0),
		ok(2, 0.020, 100, 0),
		ok(3, 0.030, 101, 2.5), // a second session
		{Start: at(10.5), End: at(10.6), Burst: true, Err: "28P01"}, // inside the window
		ok(11, 0.040, 102, 10.9),                                    // inside the window, a third session
		ok(20, 0.050, 102, 10.9),
	}
	r := Result{Server: RotorServer, Rotations: 1, Windows: []Window{{
		Start: at(10), End: at(12), Evident: true,
		Rotation: wire.Rotation{Role: "app_a", Altered: at(10.2)},
	}}}
	r.tally(calls)
	if r.Calls != 6 || r.Failed != 1 || r.FirstErr != "28P01" {
		t.Errorf("calls %d, failed %d, first %q", r.Calls, r.Failed, r.FirstErr)
	}
	if r.Reconnections != 2 {
		t.Errorf("%d reconnections; want 2 (three sessions)", r.Reconnections)
	}
	if r.In.Calls != 2 || r.Out.Calls != 4 {
		t.Errorf("in %d, out %d calls; want 2 and 4", r.In.Calls, r.Out.Calls)
	}
	if r.In.P50 != 40*time.Millisecond || r.In.P99 != 100*time.Millisecond {
		t.Errorf("in p50 %v p99 %v", r.In.P50, r.In.P99)
	}
	if r.Out.P50 != 20*time.Millisecond || r.Out.P99 != 50*time.Millisecond {
		t.Errorf("out p50 %v p99 %v", r.Out.P50, r.Out.P99)
	}
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0], "rotation 1, ALTER ROLE +0.30s (burst call") {
		t.Errorf("failures %q", r.Failures)
	}
	// One rotation asked for and run, one failed call: Check reports the
	// failure, and the call on a line of its own.
	problems := Check(r, 1)
	if len(problems) != 2 || !strings.Contains(problems[0], "1 of 6 calls failed") || !strings.Contains(problems[1], "28P01") {
		t.Errorf("Check: %q", problems)
	}
}

// TestCheck: what Check asks of each server.
func TestCheck(t *testing.T) {
	win := Window{Evident: true}
	clean := Result{Server: RotorServer, Rotations: 1, Reconnections: 1, Windows: []Window{win}, Calls: 10}
	if p := Check(clean, 1); len(p) != 0 {
		t.Errorf("a clean rotor pass: %q", p)
	}
	missed := clean
	missed.Windows = []Window{{Evident: false}}
	if p := Check(missed, 1); len(p) != 1 || !strings.Contains(p[0], "no call was served on a session") {
		t.Errorf("a rotation the server never showed: %q", p)
	}
	if p := Check(clean, 2); len(p) != 2 {
		t.Errorf("fewer rotations than asked, too few reconnections: %q", p)
	}
	baseline := Result{Server: ReadOnceServer, Rotations: 1, Windows: []Window{win}, Calls: 10}
	if p := Check(baseline, 1); len(p) != 1 || !strings.Contains(p[0], "did not test rotation") {
		t.Errorf("a baseline that failed nothing: %q", p)
	}
	baseline.Failed = 3
	if p := Check(baseline, 1); len(p) != 0 {
		t.Errorf("a baseline that failed calls: %q", p)
	}
}

func TestParseRows(t *testing.T) {
	rows, err := parseRows("store/no/single-role,alter/yes/dual-role,agent/no/single-role,agent/yes/dual-role/verify-fails")
	want := []Row{
		{By: Manual, First: StoreFirst, Strategy: SingleRole},
		{By: Manual, First: AlterFirst, SIGHUP: true, Strategy: DualRole},
		{By: Agent, Strategy: SingleRole},
		{By: Agent, SIGHUP: true, Strategy: DualRole, VerifyFails: true},
	}
	if err != nil || !slices.Equal(rows, want) {
		t.Errorf("%+v, %v", rows, err)
	}
	for _, bad := range []string{"store/no", "later/no/single-role", "store/maybe/single-role", "store/no/triple-role",
		"store/no/dual-role/verify-fails", "agent/no/single-role/verify-fails", "agent/no/dual-role/sometimes"} {
		if _, err := parseRows(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	all := Rows()
	if len(all) != 11 || all[8] != want[2] {
		t.Errorf("%d rows; want 8 manual and 3 of the agent", len(all))
	}
	agents := 0
	for _, r := range all {
		if r.agent() {
			agents++
		}
	}
	if agents != 3 || !all[10].VerifyFails || all[10].Attempts(5) != 1 || all[8].Attempts(5) != 5 {
		t.Errorf("the agent's rows: %+v", all[8:])
	}
}
