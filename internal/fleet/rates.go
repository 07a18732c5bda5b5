package fleet

import (
	"math"
	"slices"
	"time"

	"github.com/rotorhq/rotor/internal/smtest"
)

// Traffic is what the server received during one span of a measurement.
type Traffic struct {
	From, To  time.Time
	Requests  int            // requests received in [From, To)
	ByOp      map[string]int // the same, by operation
	Throttled int            // of those, answered ThrottlingException by a quota
	Mean      float64        // Requests a second
	Peak      int            // the most requests in one 1-second window
	Windows   int            // how many 1-second windows Peak was taken over
}

// Measure counts the requests received in [from, to). The windows of Peak
// are aligned on from, [from+k s, from+(k+1) s), as a per-second metric of
// the backend would count them; a last window shorter than a second counts
// too (it can only lower the peak it is part of).
func Measure(log []smtest.Request, from, to time.Time) Traffic {
	t := Traffic{From: from, To: to, ByOp: map[string]int{}}
	if !to.After(from) {
		return t
	}
	span := to.Sub(from)
	t.Windows = int((span + time.Second - 1) / time.Second)
	perWindow := make([]int, t.Windows)
	for _, r := range log {
		if r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		t.Requests++
		t.ByOp[r.Op]++
		if r.Throttled {
			t.Throttled++
		}
		perWindow[int(r.Time.Sub(from)/time.Second)]++
	}
	t.Mean = float64(t.Requests) / span.Seconds()
	if len(perWindow) > 0 {
		t.Peak = slices.Max(perWindow)
	}
	return t
}

// RandomPhasePeak is the peak that a fleet polling at random, independent
// phases would show at a mean of lambda requests a second over the given
// number of 1-second windows: the median of the largest of that many
// Poisson(lambda) counts, the smallest k with P(X ≤ k)^windows ≥ 1/2. It is
// the floor that jitter alone can reach, against which the goal of a peak
// within 1.2 × the ideal rate is to be read: over a few hundred windows it
// is 1.2 × lambda only from about lambda = 200 a second on.
func RandomPhasePeak(lambda float64, windows int) int {
	if lambda <= 0 || windows < 1 {
		return 0
	}
	target := math.Pow(0.5, 1/float64(windows))
	// P(X ≤ k) summed term by term in logs, which stay finite for any
	// lambda a fleet can reach.
	logTerm := -lambda // log P(X = 0)
	cdf := 0.0
	for k := 0; ; k++ {
		if k > 0 {
			logTerm += math.Log(lambda) - math.Log(float64(k))
		}
		cdf += math.Exp(logTerm)
		if cdf >= target || float64(k) > lambda+40*math.Sqrt(lambda)+40 {
			return k
		}
	}
}

// quantile returns the q-quantile of sorted durations by the nearest-rank
// method; zero for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
