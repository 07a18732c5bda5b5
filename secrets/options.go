package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Defaults of the Store's options.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultJitter       = 0.1
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultFetchTimeout = 30 * time.Second
	DefaultConcurrency  = 8
)

// A Validator tests candidate versions of a key before they replace the ones
// the Store serves (test before swap). It returns nil to accept them; an error
// keeps the current values, is recorded in the key's status and makes the
// next attempt back off. A validator runs when a key's versions are about to
// change — on a background refresh, on Refresh and on Reload, and when a
// pending version is considered after the served one failed authentication
// (see Versions.Pending; a refusal then keeps the served value and is no
// failure) — and not on a key's first load, which has no earlier value to
// fall back to.
//
// ctx carries the Store's fetch timeout. A validator must not put the
// candidate's value in its error.
//
// Validators of different refreshes may run concurrently (a background
// round, a Refresh and a Reload each validate their own candidates), so a
// validator must be safe for concurrent use. It must return when ctx ends,
// and must not call the Store's Close, Reload or Refresh: Close waits for
// the validator to return, and a reload waits for its own validation.
type Validator func(ctx context.Context, key string, candidate Versions) error

// An Option configures a Store.
type Option func(*config) error

type validatorEntry struct {
	fn   Validator
	keys map[string]bool // nil: every key
}

type config struct {
	ttl          time.Duration
	jitter       float64
	maxStale     time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	fetchTimeout time.Duration
	concurrency  int
	clock        Clock
	logger       *slog.Logger
	validators   []validatorEntry
	sources      map[string]Source
	overlap      time.Duration
	authWait     time.Duration
	required     []string // nil: no WithRequired
	observers    []Observer
	reloadSpread time.Duration
	phaseSpread  bool
}

func defaultConfig() config {
	return config{
		ttl:          DefaultTTL,
		jitter:       DefaultJitter,
		backoffMin:   DefaultBackoffMin,
		backoffMax:   DefaultBackoffMax,
		fetchTimeout: DefaultFetchTimeout,
		concurrency:  DefaultConcurrency,
		authWait:     DefaultAuthWait,
		clock:        SystemClock,
		logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		sources:      map[string]Source{},
	}
}

// WithTTL sets how long a value is served before the Store polls its source
// again in the background (default 5 minutes). Each refresh is scheduled a
// random fraction earlier (see WithJitter) so that a fleet does not poll in
// step. Reads never wait for a refresh.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("secrets: WithTTL(%v): must be positive", d)
		}
		c.ttl = d
		return nil
	}
}

// WithJitter sets the fraction of the TTL by which refreshes are randomly
// advanced: with a TTL of 5 minutes and a jitter of 0.1 (the default) a key is
// polled between 4m30s and 5m after its last refresh. 0 disables jitter.
func WithJitter(fraction float64) Option {
	return func(c *config) error {
		if fraction < 0 || fraction >= 1 {
			return fmt.Errorf("secrets: WithJitter(%v): must be in [0, 1)", fraction)
		}
		c.jitter = fraction
		return nil
	}
}

// WithMaxStale makes the Store fail closed: once a key's last good value is
// older than d (because refreshes keep failing), Get returns an error wrapping
// ErrStale and the last refresh error instead of the value. By default (0) the
// last good value is served for as long as the source is unreachable. d must
// exceed the TTL plus the fetch timeout, or New fails: a healthy key is that
// old just before its next poll.
func WithMaxStale(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("secrets: WithMaxStale(%v): must not be negative", d)
		}
		c.maxStale = d
		return nil
	}
}

// WithBackoff sets the retry schedule after a failed refresh or a rejected
// candidate: the n-th consecutive failure waits a random time in
// [0, min(max, min·2ⁿ⁻¹)) ("full jitter"); a success resets it. The defaults
// are 1 second and 5 minutes.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("secrets: WithBackoff(%v, %v): need 0 < min <= max", min, max)
		}
		c.backoffMin, c.backoffMax = min, max
		return nil
	}
}

// WithFetchTimeout bounds each call to a source and each validator run
// (default 30 seconds). A call that runs out of time fails with ErrTransient.
func WithFetchTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("secrets: WithFetchTimeout(%v): must be positive", d)
		}
		c.fetchTimeout = d
		return nil
	}
}

// WithConcurrency bounds how many fetches a refresh round or a reload runs at
// once (default 8).
func WithConcurrency(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("secrets: WithConcurrency(%d): must be at least 1", n)
		}
		c.concurrency = n
		return nil
	}
}

// WithValidator registers v for the given keys, or for every key when none is
// given. Validators run in the order they were registered; the first error
// rejects the candidate.
//
// A validator registered for a key runs on every change of the value that key
// selects from, whichever keys of that value are read and whether or not the
// key itself has been read: WithValidator(tryLogin, "file:///run/secrets/db.json")
// covers a Store that reads only "file:///run/secrets/db.json#password", with
// the whole value as candidate, and a validator registered for
// "...db.json#password" is called with that field. A validator registered for
// every key runs for each key the Store serves from a changed value. A key
// that cannot be parsed makes New fail.
func WithValidator(v Validator, keys ...string) Option {
	return func(c *config) error {
		if v == nil {
			return errors.New("secrets: WithValidator(nil)")
		}
		e := validatorEntry{fn: v}
		if len(keys) > 0 {
			e.keys = make(map[string]bool, len(keys))
			for _, k := range keys {
				e.keys[k] = true
			}
		}
		c.validators = append(c.validators, e)
		return nil
	}
}

// WithLogger sets the logger for refreshes, rejections and reloads. Log
// records carry keys, version ids and error classes, never values. By default
// the Store logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("secrets: WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithClock sets the clock the Store takes its time and timers from (default
// SystemClock). Tests pass a fake clock to drive TTLs, backoff and staleness.
func WithClock(clk Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return errors.New("secrets: WithClock(nil)")
		}
		c.clock = clk
		return nil
	}
}

// WithSource routes keys of the form scheme://... to src. The Store's own
// source (the argument of New) serves keys without a scheme. A scheme is
// matched without regard to case.
func WithSource(scheme string, src Source) Option {
	return func(c *config) error {
		scheme = strings.ToLower(scheme)
		if !validScheme(scheme) {
			return fmt.Errorf("secrets: WithSource(%q): invalid scheme", scheme)
		}
		if src == nil {
			return fmt.Errorf("secrets: WithSource(%q, nil)", scheme)
		}
		if _, dup := c.sources[scheme]; dup {
			return fmt.Errorf("secrets: WithSource(%q): scheme registered twice", scheme)
		}
		c.sources[scheme] = src
		return nil
	}
}

// validScheme reports whether s is a URI scheme: a letter followed by
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// WithOverlap declares the rotation's overlap window: how long the backend
// keeps accepting the previous credential after a new one becomes current
// (the time between setting a new password and revoking the old one, say).
// New then logs a warning through the Store's logger when the window is
// shorter than RecommendedOverlap, because a reader could still hold the old
// credential when it is revoked. It changes no behaviour.
func WithOverlap(window time.Duration) Option {
	return func(c *config) error {
		if window <= 0 {
			return fmt.Errorf("secrets: WithOverlap(%v): must be positive", window)
		}
		c.overlap = window
		return nil
	}
}

// WithReloadSpread makes each reload that ReloadOnSignal starts wait first a
// uniformly random part of window, measured on the Store's clock (see
// WithClock), so that a fleet whose instances all receive SIGHUP at once
// (kubectl exec over a deployment, an SSM Run Command) reaches its backend
// spread over window rather than in one burst. Signals that arrive during
// the wait join the reload that waits. Close, the end of ReloadOnSignal's
// context and its stop function end the wait, and no reload follows.
// Explicit calls of Reload are never delayed: a caller that asks for a
// reload gets it at once. The spread comes once, before a reload's first
// attempt; a signalled reload that the backend throttled is retried after
// the Store's backoff instead (see ReloadOnSignal). The default, 0, spreads
// nothing; a negative window makes New fail.
func WithReloadSpread(window time.Duration) Option {
	return func(c *config) error {
		if window < 0 {
			return fmt.Errorf("secrets: WithReloadSpread(%v): must not be negative", window)
		}
		c.reloadSpread = window
		return nil
	}
}

// WithPhaseSpread makes a Store take a random phase for its polling after
// its first load and after each reload: the first poll that follows is due
// a uniformly random time in (0, T] later (T the TTL; see WithTTL), drawn
// from the same random source as the jitter and measured on the Store's
// clock (see WithClock), instead of a TTL less jitter. The polls after it
// come a TTL less jitter apart, as without the option, and no value is
// ever served longer than T before it is polled again.
//
// It is meant for fleets. The jitter moves each poll by at most a fraction
// of the TTL (see WithJitter), so servers started together, or reloaded
// together by a fleet-wide SIGHUP, keep polling the backend in step round
// after round, in bursts of the whole fleet's requests. With a random
// phase each, their polls spread over the TTL from the first round on. All
// keys of one Store share the phase of their first load (and of a reload),
// so a Store still polls them in one round, and one batch where its source
// batches (see BatchFetcher).
//
// The default is off: a single server has no one to fall in step with and
// gains nothing, while the option costs it up to one earlier poll of each
// key after its first load and after each reload.
func WithPhaseSpread() Option {
	return func(c *config) error {
		c.phaseSpread = true
		return nil
	}
}
