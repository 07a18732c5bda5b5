package secrets_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// fractions returns a random source that answers fs in turn, then repeats
// the last.
func fractions(fs ...float64) func() float64 {
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		f := fs[0]
		if len(fs) > 1 {
			fs = fs[1:]
		}
		return f
	}
}

// firstPolls starts n Stores at epoch, each with its own seeded random
// source and the given options, loads key k in each, and returns when each
// Store polls k next.
func firstPolls(t *testing.T, n int, opts ...secrets.Option) []time.Time {
	t.Helper()
	out := make([]time.Time, n)
	for i := range out {
		f := newFixture(t, opts...)
		secrets.SetRand(f.store, rand.New(rand.NewPCG(uint64(i), 7)).Float64)
		f.src.Set("k", "v")
		f.get("k")
		out[i] = f.status("k").NextRefresh
	}
	return out
}

// quarters counts the polls that fall in each quarter of (epoch, epoch+ttl],
// and fails the test for one outside it.
func quarters(t *testing.T, polls []time.Time, ttl time.Duration) [4]int {
	t.Helper()
	var q [4]int
	for i, p := range polls {
		d := p.Sub(epoch)
		if d <= 0 || d > ttl {
			t.Fatalf("Store %d polls %v after its first load, want within (0, %v]", i, d, ttl)
		}
		q[min(int(4*d/ttl), 3)]++
	}
	return q
}

// TestPhaseSpreadFirstPoll: Stores started together with WithPhaseSpread
// poll first at phases spread over the TTL; without it, all of them poll
// within the jitter window at its end.
func TestPhaseSpreadFirstPoll(t *testing.T) {
	const n = 40
	q := quarters(t, firstPolls(t, n, secrets.WithPhaseSpread()), time.Minute)
	for i, c := range q {
		if c < n/8 {
			t.Errorf("with WithPhaseSpread, %d of %d first polls in quarter %d of the TTL (%v), want them spread", c, n, i+1, q)
		}
	}
	distinct := map[time.Time]bool{}
	for _, p := range firstPolls(t, n, secrets.WithPhaseSpread()) {
		distinct[p] = true
	}
	if len(distinct) != n {
		t.Errorf("with WithPhaseSpread, %d distinct first polls among %d Stores", len(distinct), n)
	}

	for i, p := range firstPolls(t, n) {
		if d := p.Sub(epoch); d < 54*time.Second || d > time.Minute {
			t.Fatalf("without WithPhaseSpread, Store %d polls %v after its first load, want the TTL less at most 10 %%", i, d)
		}
	}
}

// TestPhaseSpreadSchedule: the first poll after a first load comes at the
// drawn phase, shared by every key of the Store so that they stay in one
// round; the polls after it come a TTL less jitter apart; a reload draws a
// new phase, shared by every key it reloads.
func TestPhaseSpreadSchedule(t *testing.T) {
	f := newFixture(t, secrets.WithPhaseSpread(), secrets.WithJitter(0.1))
	// The load phase, then the jitter of each later poll; a reload's phase
	// is set before the reload.
	secrets.SetRand(f.store, fractions(0.75, 0.5))
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		f.src.Set(k, k+"1")
		f.get(k)
	}
	first := epoch.Add(15 * time.Second) // T − 0.75·T
	for _, k := range keys {
		if got := f.status(k).NextRefresh; !got.Equal(first) {
			t.Fatalf("%s: first poll at %v, want %v (the Store's phase)", k, got, first)
		}
	}

	// A key loaded later takes the Store's phase from its own load (and,
	// due beyond the jitter window of the others, has a round of its own).
	f.clock.Advance(10 * time.Second)
	f.src.Set("d", "d1")
	f.get("d")
	if got, want := f.status("d").NextRefresh, epoch.Add(25*time.Second); !got.Equal(want) {
		t.Fatalf("d, loaded at +10s: first poll at %v, want %v", got, want)
	}

	// The later polls keep the TTL with jitter: 60s − 0.5·0.1·60s.
	f.advanceTo(first)
	f.waitRound()
	for _, k := range keys {
		if got, want := f.status(k).NextRefresh, first.Add(57*time.Second); !got.Equal(want) {
			t.Fatalf("%s: after its first poll the next is at %v, want %v", k, got, want)
		}
	}
	f.advanceTo(epoch.Add(25 * time.Second))
	f.waitRound()
	if got, want := f.status("d").NextRefresh, epoch.Add(25*time.Second+57*time.Second); !got.Equal(want) {
		t.Fatalf("d: after its first poll the next is at %v, want %v", got, want)
	}

	// A reload draws one phase for every key it reloads.
	f.advanceTo(epoch.Add(30 * time.Second))
	secrets.SetRand(f.store, fractions(0.4, 0.5))
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	reloaded := epoch.Add(30*time.Second + 36*time.Second) // + T − 0.4·T
	for _, k := range append(keys, "d") {
		if got := f.status(k).NextRefresh; !got.Equal(reloaded) {
			t.Fatalf("%s: after the reload the next poll is at %v, want %v (the reload's phase)", k, got, reloaded)
		}
	}
	f.advanceTo(reloaded)
	f.waitRound()
	for _, k := range append(keys, "d") {
		if got, want := f.status(k).NextRefresh, reloaded.Add(57*time.Second); !got.Equal(want) {
			t.Fatalf("%s: after the first poll since the reload the next is at %v, want %v", k, got, want)
		}
	}
}

// TestPhaseSpreadReloadSpreads: Stores reloaded together with
// WithPhaseSpread poll next at phases spread over the TTL; without it, all
// of them poll within the jitter window at its end.
func TestPhaseSpreadReloadSpreads(t *testing.T) {
	const n = 40
	reloadPolls := func(opts ...secrets.Option) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			f := newFixture(t, opts...)
			f.src.Set("k", "v")
			f.get("k")
			f.advanceTo(epoch.Add(10 * time.Second))
			secrets.SetRand(f.store, rand.New(rand.NewPCG(uint64(i), 11)).Float64)
			if err := f.store.Reload(f.ctx()); err != nil {
				t.Fatal(err)
			}
			out[i] = f.status("k").NextRefresh.Add(-10 * time.Second)
		}
		return out
	}
	q := quarters(t, reloadPolls(secrets.WithPhaseSpread()), time.Minute)
	for i, c := range q {
		if c < n/8 {
			t.Errorf("with WithPhaseSpread, %d of %d polls after a reload in quarter %d of the TTL (%v), want them spread", c, n, i+1, q)
		}
	}
	for i, p := range reloadPolls() {
		if d := p.Sub(epoch); d < 54*time.Second || d > time.Minute {
			t.Fatalf("without WithPhaseSpread, Store %d polls %v after its reload, want the TTL less at most 10 %%", i, d)
		}
	}
}

// TestPhaseSpreadLeavesRefreshAlone: a Refresh is neither a first load nor a
// reload, and keeps the TTL with jitter.
func TestPhaseSpreadLeavesRefreshAlone(t *testing.T) {
	f := newFixture(t, secrets.WithPhaseSpread())
	f.src.Set("k", "v1")
	f.get("k")
	f.clock.Advance(5 * time.Second)
	secrets.SetRand(f.store, fractions(0.9))
	f.src.Set("k", "v2")
	if err := f.store.Refresh(f.ctx(), "k"); err != nil {
		t.Fatal(err)
	}
	if got, want := f.status("k").NextRefresh, epoch.Add(5*time.Second+time.Minute-5400*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after a Refresh the next poll is at %v, want %v (the TTL less jitter)", got, want)
	}
}
