package rotate

import "github.com/rotorhq/rotor/secrets"

// WithBoundsClock makes the Agent time the ends of its steps' contexts on c
// instead of its clock. Tests pass a clock that tells these timers from the
// waits, so that a test moving a fake clock from wait to wait does not move
// it to the end of a step, which on a fake clock takes no time.
func WithBoundsClock(c secrets.Clock) Option {
	return func(a *Agent) error { a.bounds = c; return nil }
}
