package fleet_test

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/fleet"
	"github.com/rotorhq/rotor/internal/smtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The flags of TestFleet. The defaults fit the suite on a busy two-core
// machine; the README's table comes from
//
//	go test -run '^TestFleet$' -v -timeout 2h ./internal/fleet \
//	    -fleet.n=10,100,1000 -fleet.ttl=30s -fleet.start=together,staggered
var (
	flagN       = flag.String("fleet.n", "10,100", "fleet sizes N, comma-separated")
	flagK       = flag.Int("fleet.k", 5, "keys K per Store")
	flagTTL     = flag.Duration("fleet.ttl", 3*time.Second, "TTL T of every Store")
	flagJitter  = flag.Float64("fleet.jitter", 0.1, "WithJitter of every Store")
	flagStart   = flag.String("fleet.start", "together", `how the Stores start, comma-separated: "together" (all at once), "staggered" (uniformly over T)`)
	flagWarmup  = flag.Duration("fleet.warmup", 0, "least warm-up after the last first load (0: 2·T)")
	flagWindow  = flag.Duration("fleet.window", 0, "least length of the steady window (0: 4·T)")
	flagPhase   = flag.Bool("fleet.phase-spread", false, "give every Store secrets.WithPhaseSpread")
	flagSpread  = flag.Duration("fleet.spread", 0, "WithReloadSpread window of the second coordinated reload (0: T)")
	flagQuotas  = flag.String("fleet.quotas", "aws", `server quotas: "aws" (AWS's documented rates) or "none"`)
	flagVerbose = flag.Bool("fleet.progress", false, "log each phase as it starts")
)

func configs(t *testing.T) []fleet.Config {
	t.Helper()
	var quotas []smtest.Quota
	switch *flagQuotas {
	case "aws":
		quotas = smtest.AWSQuotas()
	case "none":
	default:
		t.Fatalf("-fleet.quotas=%q: want aws or none", *flagQuotas)
	}
	ttl := *flagTTL
	warmup, window, spread := *flagWarmup, *flagWindow, *flagSpread
	if warmup == 0 {
		warmup = 2 * ttl
	}
	if window == 0 {
		window = 4 * ttl
	}
	if spread == 0 {
		spread = ttl
	}
	var out []fleet.Config
	for _, start := range strings.Split(*flagStart, ",") {
		var stagger time.Duration
		switch start {
		case "together":
		case "staggered":
			stagger = ttl
		default:
			t.Fatalf("-fleet.start: %q: want together or staggered", start)
		}
		for _, s := range strings.Split(*flagN, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("-fleet.n: %v", err)
			}
			cfg := fleet.Config{
				Instances: n, Keys: *flagK, TTL: ttl, Jitter: *flagJitter,
				Stagger: stagger, Warmup: warmup, Window: window, Spread: spread,
				PhaseSpread: *flagPhase, Quotas: quotas,
			}
			if *flagVerbose {
				cfg.Progress = func(format string, args ...any) {
					t.Logf("N=%d %s: %s", n, start, fmt.Sprintf(format, args...))
				}
			}
			out = append(out, cfg)
		}
	}
	return out
}

// TestFleet measures fleets of Stores against the AWS wire-protocol server
// and prints the table. It asserts counts, which do not depend on the
// machine's speed: every Store polls its K keys with ⌈K/20⌉ calls a round
// (and one DescribeSecret per key of a throttled batch, as documented),
// reads no value while nothing changes, converges on every rotation and
// never fails a reload. The goals on rates and times are reported as
// measured, in the table's pass/fail lines: on a machine whose cores are
// busy with other work they measure the machine as much as the library.
func TestFleet(t *testing.T) {
	var reports []*fleet.Report
	for _, cfg := range configs(t) {
		name := fmt.Sprintf("N=%d/%s", cfg.Instances, strings.ReplaceAll(cfg.StartMode(), " ", "_"))
		t.Run(name, func(t *testing.T) {
			rep, err := fleet.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkPolling(t, rep)
			checkReload(t, cfg, rep.Reload)
			if rep.SpreadReload == nil {
				t.Error("no reload with a spread was measured")
			} else {
				checkReload(t, cfg, *rep.SpreadReload)
			}
			reports = append(reports, rep)
		})
	}
	if len(reports) > 0 {
		t.Logf("fleet measurement (quotas: %s, jitter %v)\n%s", *flagQuotas, *flagJitter, fleet.Table(reports))
	}
}

// checkPolling checks each Store's steady polling, from its first load to
// the polled rotation.
func checkPolling(t *testing.T, rep *fleet.Report) {
	t.Helper()
	cfg := rep.Config
	per := cfg.BatchCalls()
	roundOp := "BatchGetSecretValue"
	if cfg.Keys == 1 {
		// A round of one key is a DescribeSecret, not a batch.
		roundOp = "DescribeSecret"
	}
	if len(rep.Counts) != cfg.Instances {
		t.Fatalf("%d Stores counted, want %d", len(rep.Counts), cfg.Instances)
	}
	for _, pc := range rep.Counts {
		// A round reports one outcome per key; the last round may have
		// reached the server before the rotation and reported after it.
		roundsLow := pc.Refreshes / cfg.Keys
		roundsHigh := (pc.Refreshes+cfg.Keys-1)/cfg.Keys + 1
		if pc.Refreshes < 2*cfg.Keys {
			t.Errorf("Store %d: %d refresh outcomes, fewer than two rounds", pc.Instance, pc.Refreshes)
		}
		calls := pc.ByOp[roundOp]
		if calls < per*roundsLow || calls > per*roundsHigh {
			t.Errorf("Store %d: %d %s calls for %d refresh outcomes of %d keys: want %d a round",
				pc.Instance, calls, roundOp, pc.Refreshes, cfg.Keys, per)
		}
		for op, n := range pc.ByOp {
			switch {
			case op == roundOp:
			case op == "DescribeSecret" && cfg.Keys > 1:
				// A throttled batch is followed by one DescribeSecret per
				// key, and nothing else.
				if n > cfg.Keys*pc.ThrottledBatches {
					t.Errorf("Store %d: %d DescribeSecret calls after %d throttled batches of %d keys",
						pc.Instance, n, pc.ThrottledBatches, cfg.Keys)
				}
			default:
				t.Errorf("Store %d: %d %s calls while nothing changed", pc.Instance, n, op)
			}
		}
	}
	if n := len(rep.Polling.Times); n != cfg.Instances {
		t.Errorf("%d Stores converged on the polled rotation, want %d", n, cfg.Instances)
	}
}

func checkReload(t *testing.T, cfg fleet.Config, rr fleet.ReloadResult) {
	t.Helper()
	if rr.Reloads < cfg.Instances {
		t.Errorf("spread %v: %d reloads reported, want one a Store (%d) or more", rr.Spread, rr.Reloads, cfg.Instances)
	}
	if rr.Failed != 0 {
		t.Errorf("spread %v: %d Stores' reloads ended in failure (failed keys by class: %v), want none",
			rr.Spread, rr.Failed, rr.FailedClasses)
	}
	// A reload reads every key again: at least a batch call a Store.
	if rr.ReloadCalls < cfg.Instances*cfg.BatchCalls() {
		t.Errorf("spread %v: %d requests for %d reloads of %d keys", rr.Spread, rr.ReloadCalls, rr.Reloads, cfg.Keys)
	}
	if n := len(rr.Convergence.Times); n != cfg.Instances {
		t.Errorf("spread %v: %d Stores converged, want %d", rr.Spread, n, cfg.Instances)
	}
}

func TestConfigRejected(t *testing.T) {
	for name, cfg := range map[string]fleet.Config{
		"no instances":    {Keys: 1, TTL: time.Second},
		"no keys":         {Instances: 1, TTL: time.Second},
		"no TTL":          {Instances: 1, Keys: 1},
		"negative spread": {Instances: 1, Keys: 1, TTL: time.Second, Spread: -time.Second},
	} {
		if _, err := fleet.Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: Run accepted %+v", name, cfg)
		}
	}
}

func TestStartMode(t *testing.T) {
	for want, cfg := range map[string]fleet.Config{
		"together":                        {},
		"together, phase spread":          {PhaseSpread: true},
		"staggered over 30s":              {Stagger: 30 * time.Second},
		"staggered over 3s, phase spread": {Stagger: 3 * time.Second, PhaseSpread: true},
	} {
		if got := cfg.StartMode(); got != want {
			t.Errorf("StartMode of %+v = %q, want %q", cfg, got, want)
		}
	}
}

func TestIdeal(t *testing.T) {
	for _, tc := range []struct {
		n, k  int
		ttl   time.Duration
		calls int
		ideal float64
	}{
		{10, 5, 10 * time.Second, 1, 1},
		{1000, 5, 30 * time.Second, 1, 1000.0 / 30},
		{100, 20, time.Minute, 1, 100.0 / 60},
		{100, 21, time.Minute, 2, 200.0 / 60},
		{100, 100, 5 * time.Minute, 5, 500.0 / 300},
	} {
		cfg := fleet.Config{Instances: tc.n, Keys: tc.k, TTL: tc.ttl}
		if got := cfg.BatchCalls(); got != tc.calls {
			t.Errorf("N=%d K=%d: BatchCalls %d, want %d", tc.n, tc.k, got, tc.calls)
		}
		if got := cfg.Ideal(); got < tc.ideal*0.999 || got > tc.ideal*1.001 {
			t.Errorf("N=%d K=%d T=%v: Ideal %.3f, want %.3f", tc.n, tc.k, tc.ttl, got, tc.ideal)
		}
	}
}
