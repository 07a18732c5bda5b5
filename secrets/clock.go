package secrets

import "time"

// A Clock tells the time and makes timers. The Store takes all its time from
// one, so tests can drive refreshes, backoff and staleness with a fake clock
// (see WithClock) instead of sleeping.
//
// The Store calls a Clock and its Timers from many goroutines at once (its
// scheduler, readers checking staleness, calls waiting after an
// authentication failure), so both must be safe for concurrent use. Their
// methods must return at once: they must not block, and must not call back
// into the Store.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// A Timer is the part of *time.Timer that the Store uses.
type Timer interface {
	// C returns the channel on which the timer delivers the time when it fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; see time.Timer.Stop.
	Stop() bool
	// Reset makes the timer fire after d; see time.Timer.Reset.
	Reset(d time.Duration) bool
}

// SystemClock is the Clock of the time package. It is the default.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time        { return t.t.C }
func (t sysTimer) Stop() bool                 { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
