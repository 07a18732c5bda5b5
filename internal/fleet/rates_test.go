package fleet_test

import (
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fleet"
	"github.com/rotorhq/rotor/internal/smtest"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func at(ms int, op string, throttled bool) smtest.Request {
	return smtest.Request{Op: op, Time: t0.Add(time.Duration(ms) * time.Millisecond), Throttled: throttled}
}

func TestMeasure(t *testing.T) {
	log := []smtest.Request{
		at(-1, "BatchGetSecretValue", false), // before the span
		at(0, "BatchGetSecretValue", false),
		at(999, "BatchGetSecretValue", true),
		at(1000, "DescribeSecret", false),
		at(2500, "BatchGetSecretValue", false),
		at(2600, "BatchGetSecretValue", false),
		at(2700, "GetSecretValue", false),
		at(3000, "BatchGetSecretValue", false), // at the end: outside
	}
	tr := fleet.Measure(log, t0, t0.Add(3*time.Second))
	if tr.Requests != 6 || tr.Throttled != 1 || tr.Peak != 3 || tr.Windows != 3 {
		t.Errorf("Measure = %+v; want 6 requests, 1 throttled, peak 3 over 3 windows", tr)
	}
	if tr.ByOp["BatchGetSecretValue"] != 4 || tr.ByOp["DescribeSecret"] != 1 || tr.ByOp["GetSecretValue"] != 1 {
		t.Errorf("ByOp = %v", tr.ByOp)
	}
	if tr.Mean != 2 {
		t.Errorf("Mean = %v, want 2", tr.Mean)
	}

	short := fleet.Measure(log, t0, t0.Add(1500*time.Millisecond))
	if short.Windows != 2 || short.Peak != 2 || short.Requests != 3 {
		t.Errorf("a span of 1.5 s: %+v; want 2 windows, peak 2, 3 requests", short)
	}
	if empty := fleet.Measure(log, t0, t0); empty.Requests != 0 || empty.Windows != 0 {
		t.Errorf("an empty span: %+v", empty)
	}
}

func TestRandomPhasePeak(t *testing.T) {
	// One window: the median of Poisson(lambda), which is lambda for a
	// whole lambda of this size.
	if got := fleet.RandomPhasePeak(100, 1); got != 100 {
		t.Errorf("RandomPhasePeak(100, 1) = %d, want 100", got)
	}
	// Low rates: over 300 windows, Poisson(1) reaches 5 or so.
	if got := fleet.RandomPhasePeak(1, 300); got < 4 || got > 6 {
		t.Errorf("RandomPhasePeak(1, 300) = %d, want about 5", got)
	}
	// The goal of 1.2 × the mean is out of reach below about 200 a second
	// over a few hundred windows, and within it above.
	if got := fleet.RandomPhasePeak(1000.0/30, 300); float64(got) < 1.3*1000.0/30 {
		t.Errorf("RandomPhasePeak(33.3, 300) = %d, want well above 1.2 × the mean", got)
	}
	if got := fleet.RandomPhasePeak(400, 300); float64(got) > 1.2*400 {
		t.Errorf("RandomPhasePeak(400, 300) = %d, want within 1.2 × the mean", got)
	}
	// More windows, a higher peak; never below the mean's floor.
	prev := 0
	for _, w := range []int{1, 10, 100, 1000, 10000} {
		got := fleet.RandomPhasePeak(50, w)
		if got < prev {
			t.Errorf("RandomPhasePeak(50, %d) = %d, below %d for fewer windows", w, got, prev)
		}
		prev = got
	}
	if got := fleet.RandomPhasePeak(0, 10); got != 0 {
		t.Errorf("RandomPhasePeak(0, 10) = %d", got)
	}
	if got := fleet.RandomPhasePeak(1e6, 100); got < 1e6 || got > 1e6+5000 {
		t.Errorf("RandomPhasePeak(1e6, 100) = %d", got)
	}
}
