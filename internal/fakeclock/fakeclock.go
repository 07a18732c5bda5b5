// Package fakeclock is a secrets.Clock whose time moves only when a test
// says so. Timers fire during Advance, in deadline order; WaitTimers lets a
// test wait until the code under test has armed its timers, so nothing needs
// to sleep.
package fakeclock

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// Clock is a manual clock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*timer]struct{} // armed timers
	changed chan struct{}       // closed and replaced whenever timers change
}

// New returns a Clock set to start.
func New(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*timer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock has advanced by d.
func (c *Clock) NewTimer(d time.Duration) secrets.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d and fires every timer whose deadline
// has been reached.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	for t := range c.timers {
		if !t.deadline.After(c.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].deadline.Before(due[j].deadline) })
	for _, t := range due {
		delete(c.timers, t)
		select {
		case t.ch <- c.now:
		default:
		}
	}
	c.signalLocked()
	c.mu.Unlock()
}

// Timers returns the deadlines of the armed timers, earliest first.
func (c *Clock) Timers() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for t := range c.timers {
		out = append(out, t.deadline)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// WaitFor blocks until cond, called with the armed timers' deadlines, returns
// true, or ctx ends. It wakes whenever a timer is armed, stopped or fired.
func (c *Clock) WaitFor(ctx context.Context, cond func(deadlines []time.Time) bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond(c.Timers()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// WaitTimerAt blocks until a timer is armed for exactly at, or ctx ends.
func (c *Clock) WaitTimerAt(ctx context.Context, at time.Time) error {
	return c.WaitFor(ctx, func(ds []time.Time) bool {
		for _, d := range ds {
			if d.Equal(at) {
				return true
			}
		}
		return false
	})
}

func (c *Clock) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c        *Clock
	ch       chan time.Time
	deadline time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

// Stop disarms the timer and drains a value it delivered but nobody took, as
// time.Timer does since Go 1.23.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	select {
	case <-t.ch:
	default:
	}
	t.c.signalLocked()
	return armed
}

// Reset rearms the timer to fire d after the clock's current time.
func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	select {
	case <-t.ch:
	default:
	}
	t.deadline = t.c.now.Add(d)
	if d <= 0 {
		delete(t.c.timers, t)
		t.ch <- t.c.now
	} else {
		t.c.timers[t] = struct{}{}
	}
	t.c.signalLocked()
	return armed
}
