package secrets

import (
	"time"
)

// schedule is the Store's scheduler goroutine. It sleeps until the earliest
// refresh is due, starts the due refresh rounds, and sleeps again.
func (s *Store) schedule() {
	defer s.wg.Done()
	t := s.clock.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next, ok := s.dispatch()
		var fire <-chan time.Time
		if ok {
			t.Reset(next.Sub(s.clock.Now()))
			if !s.clock.Now().Before(next) {
				// The clock passed next while the timer was being armed.
				continue
			}
			fire = t.C()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-fire:
		case <-s.wake:
		}
	}
}

// dispatch starts a background round for every source with values due: a
// refresh of loaded values whose TTL has passed, and a retry of values whose
// first load failed once their backoff has passed. A round takes along the
// values of its source due within the jitter window, so that they are
// fetched in one round (and one batch where the source batches). It returns
// when the next value not yet in flight is due.
func (s *Store) dispatch() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return time.Time{}, false
	}
	now := s.clock.Now()
	horizon := now.Add(time.Duration(s.cfg.jitter * float64(s.cfg.ttl)))
	due := map[Source]bool{}
	for _, b := range s.bases {
		if b.scheduled() && !b.next.After(now) {
			due[b.src] = true
		}
	}
	rounds := map[Source][]*job{}
	var earliest time.Time
	for _, b := range s.bases {
		if !b.scheduled() {
			continue
		}
		if !b.next.After(now) || (due[b.src] && b.loaded && b.failures == 0 && !b.next.After(horizon)) {
			b.busy = true
			rounds[b.src] = append(rounds[b.src], b.newJob(s.tick(), true))
			continue
		}
		if earliest.IsZero() || b.next.Before(earliest) {
			earliest = b.next
		}
	}
	for _, jobs := range rounds {
		s.wg.Add(1)
		go s.refreshRound(jobs)
	}
	s.wakeAt = earliest
	return earliest, !earliest.IsZero()
}

// scheduled reports whether b waits for a background round: it is loaded, or
// its first load failed (or it is required) and it has a time to retry; and
// no background round for it is in flight.
func (b *baseState) scheduled() bool {
	return !b.busy && (b.loaded || !b.next.IsZero())
}

// refreshRound is one background refresh of some values of one source.
func (s *Store) refreshRound(jobs []*job) {
	defer s.wg.Done()
	s.fetch(s.ctx, jobs, true)
	bases := make([]*baseState, len(jobs))
	for i, j := range jobs {
		bases[i] = j.b
	}
	s.settle(s.ctx, jobs, false)
	s.mu.Lock()
	for _, b := range bases {
		b.busy = false
	}
	s.mu.Unlock()
	s.nudge()
	if s.roundHook != nil {
		s.roundHook()
	}
}

// A phase is a fraction of the TTL in [0, 1), drawn once when first asked
// for and the same afterwards.
type phase struct {
	f     float64
	drawn bool
}

// get returns the phase, drawing it from rand the first time.
func (p *phase) get(rand func() float64) float64 {
	if !p.drawn {
		p.f, p.drawn = rand(), true
	}
	return p.f
}

// pollDelay returns how long after a successful fetch a healthy value is
// polled again: the TTL less jitter (see ttlJittered), or, with
// WithPhaseSpread, after a first load (first) or a reload (reload), T less
// a phase drawn uniformly from [0, T), which falls in (0, T]. Every first
// load of a Store shares one phase (loadPhase), and every value of one
// reload shares reloadPhase, so that values polled in one round, and one
// batch where the source batches, still are. s.mu must be held.
func (s *Store) pollDelay(first, reload bool, reloadPhase *phase) time.Duration {
	if !s.cfg.phaseSpread || !first && !reload {
		return s.ttlJittered()
	}
	p := &s.loadPhase
	if reload {
		p = reloadPhase
	}
	return s.cfg.ttl - time.Duration(p.get(s.rand)*float64(s.cfg.ttl))
}
