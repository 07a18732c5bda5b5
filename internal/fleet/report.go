package fleet

import (
	"fmt"
	"strings"
	"time"
)

// PeakGoal is the goal for the steady polling peak: at most this multiple of
// the ideal rate.
const PeakGoal = 1.2

// StartMode names how a fleet's Stores started: "together" or "staggered
// over <d>", followed by ", phase spread" when they have
// secrets.WithPhaseSpread.
func (c Config) StartMode() string {
	mode := "together"
	if c.Stagger != 0 {
		mode = "staggered over " + c.Stagger.String()
	}
	if c.PhaseSpread {
		mode += ", phase spread"
	}
	return mode
}

// CallsPerRound returns the requests a Store made per background round in
// the steady window, all Stores together: ⌈K/20⌉ when every round is one
// batch per twenty keys and nothing was throttled.
func (r *Report) CallsPerRound() float64 {
	if r.Rounds == 0 {
		return 0
	}
	return float64(r.Steady.Requests) / r.Rounds
}

// ConvergenceBound returns what the goal allows a rotation to take to reach
// every Store by polling: T + jitter·T. A poll comes at most T after the
// last one; the jitter's share is the allowance for the round itself.
func (c Config) ConvergenceBound() time.Duration {
	return c.TTL + time.Duration(c.Jitter*float64(c.TTL))
}

// Goals returns the pass or fail line of each goal the run measured.
func (r *Report) Goals() []string {
	c := r.Config
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	peak := float64(r.Steady.Peak) / r.Ideal
	lines := []string{
		fmt.Sprintf("N=%d %s: steady peak ≤ %.1f × ideal: %s (%d/s = %.2f × %.1f/s; random phases alone give %d/s)",
			c.Instances, c.StartMode(), PeakGoal, verdict(peak <= PeakGoal), r.Steady.Peak, peak, r.Ideal,
			RandomPhasePeak(r.Ideal, r.Steady.Windows)),
		fmt.Sprintf("N=%d %s: polling converged within T + jitter·T = %v: %s (max %v)",
			c.Instances, c.StartMode(), c.ConvergenceBound(), verdict(r.Polling.Max <= c.ConvergenceBound()),
			r.Polling.Max.Round(time.Millisecond)),
	}
	for _, rr := range r.reloads() {
		lines = append(lines, fmt.Sprintf("N=%d %s %s: no reload ended in failure: %s (%d of %d Stores; %d attempts retried; %d requests throttled)",
			c.Instances, c.StartMode(), rr.label(), verdict(rr.Failed == 0), rr.Failed, c.Instances,
			rr.FailedAttempts, rr.Traffic.Throttled))
	}
	return lines
}

func (r *Report) reloads() []*ReloadResult {
	out := []*ReloadResult{&r.Reload}
	if r.SpreadReload != nil {
		out = append(out, r.SpreadReload)
	}
	return out
}

func (rr *ReloadResult) label() string {
	if rr.Spread == 0 {
		return "SIGHUP, no spread"
	}
	return "SIGHUP, spread " + rr.Spread.String()
}

// Table returns the reports as two Markdown tables, polling and coordinated
// reloads, followed by the goal lines.
func Table(reports []*Report) string {
	var b strings.Builder
	b.WriteString("| N | start | T | K | ideal req/s | mean req/s | peak req/s (1 s) | random-phase peak | calls/Store/round | startup peak | rotation → last Store, polling: p50 / p99 / max |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		c := r.Config
		fmt.Fprintf(&b, "| %d | %s | %v | %d | %.1f | %.1f (%.2f ×) | %d (%.2f ×) | %d | %.2f | %d | %s |\n",
			c.Instances, c.StartMode(), c.TTL, c.Keys, r.Ideal,
			r.Steady.Mean, r.Steady.Mean/r.Ideal, r.Steady.Peak, float64(r.Steady.Peak)/r.Ideal,
			RandomPhasePeak(r.Ideal, r.Steady.Windows), r.CallsPerRound(), r.Startup.Peak, durations(r.Polling))
	}
	b.WriteString("\n| N | start | coordinated reload | calls/Store | peak req/s (1 s) | throttled | reloads failed (attempts retried) | rotation → last Store: p50 / p99 / max | next polling round: peak req/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		c := r.Config
		for _, rr := range r.reloads() {
			fmt.Fprintf(&b, "| %d | %s | %s | %.2f | %d | %d | %d (%d) | %s | %d (%.2f ×) |\n",
				c.Instances, c.StartMode(), rr.label(), float64(rr.ReloadCalls)/float64(c.Instances),
				rr.Traffic.Peak, rr.Traffic.Throttled, rr.Failed, rr.FailedAttempts, durations(rr.Convergence),
				rr.After.Peak, float64(rr.After.Peak)/r.Ideal)
		}
	}
	b.WriteString("\n")
	for _, r := range reports {
		for _, l := range r.Goals() {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

func durations(c Convergence) string {
	return fmt.Sprintf("%v / %v / %v", roundD(c.P50), roundD(c.P99), roundD(c.Max))
}

func roundD(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
