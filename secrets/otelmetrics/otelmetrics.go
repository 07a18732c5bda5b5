// Package otelmetrics reports what a secrets.Store and its JWT verifiers do
// as OpenTelemetry metrics, so that operators can alert on a credential that
// stopped refreshing, on validators rejecting new versions, and on tokens
// still verified with the previous key long after a rotation.
//
// It is the only part of rotor that imports OpenTelemetry: a program that
// does not import this package compiles no OpenTelemetry module. It imports
// neither jwtkeys nor golang-jwt either; a *jwtkeys.Verifier is taken
// through the one-method interface VerificationCounter.
//
// Wire it in three steps: make the instruments from a MeterProvider, hand
// the Store their Observer, and register the Store (and any Verifier) for
// the instruments that are read at collection time:
//
//	m, err := otelmetrics.New(provider)
//	store, err := secrets.New(src, secrets.WithObserver(m.Observer()))
//	reg, err := m.ObserveStore(store)
//	defer reg.Unregister()
//
// # Instruments
//
// Counters, updated as the Store reports events (see secrets.Observer):
//
//   - rotor.secrets.refreshes {refresh}: outcomes of fetches of a value
//     (first loads, background refreshes, Refresh, each value of a Reload).
//     Attributes rotor.secret.key, rotor.secret.source, and error.type on a
//     failure: the class secrets.ErrorClass gives ("transient",
//     "not_found", "permission", "invalid", "rejected", ...). Failures are
//     those with error.type set.
//   - rotor.secrets.rejections {candidate}: candidate versions refused by a
//     validator or lacking a field the Store serves. Attributes
//     rotor.secret.key (the key whose check refused, which may carry a
//     "#field"), rotor.secret.source.
//   - rotor.secrets.rotations {rotation}: swaps applied, a value now serving
//     another current version. Attributes rotor.secret.key,
//     rotor.secret.source, rotor.rotation.adopted (true when the Store
//     adopted a pending version after an authentication failure).
//   - rotor.secrets.reloads {reload}: reload rounds, with error.type set
//     (to the class of the failures) when the reload applied nothing.
//   - rotor.secrets.auth_retries {retry}: authentication failures met by
//     calls wrapped by secrets.Call or WrapTool or sent through a
//     Transport, by rotor.auth_retry.outcome: "refreshed", "waited",
//     "adopted" or "gave_up".
//
// Read at collection time from a Store registered with ObserveStore:
//
//   - rotor.secrets.age (s), a gauge: how long ago the value each key
//     serves was fetched. It grows past the TTL while refreshes fail, the
//     signal of a credential that stopped refreshing. Attributes
//     rotor.secret.key, rotor.secret.source; keys not loaded are left out.
//   - rotor.secrets.consecutive_failures {failure}, a gauge: failures of
//     each key since its last success.
//
// Read at collection time from a Verifier registered with ObserveVerifier:
//
//   - rotor.jwtkeys.verifications {verification}, a counter: tokens
//     verified, with rotor.secret.key (the Verifier's key) and either
//     rotor.jwt.key_version ("current" or "previous") for an accepted token
//     or error.type (the refusal's jwtkeys.Reason, such as "expired" or
//     "key_retired") for a refused one. Tokens accepted with the previous
//     key that do not fall to zero after a rotation are clients still
//     holding old tokens.
//
// # What the attributes hold
//
// Keys (references such as "vault://secret/mcp/db#password"), source names,
// error classes and outcomes; never a value, a version id or an error's
// text. A key names a secret, which tells an observer of the metrics which
// secrets a server uses: export them where only operators read them, or
// drop the key with WithoutKeys. The keys a Store serves are a bounded set
// in a server that reads fixed keys; a server that reads keys it is given at
// run time should use WithoutKeys to bound the metrics' cardinality.
package otelmetrics

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rotorhq/rotor/secrets"
)

// ScopeName is the instrumentation scope of the Meter the instruments come
// from.
const ScopeName = "github.com/rotorhq/rotor/secrets/otelmetrics"

// Attribute keys of the instruments.
const (
	AttrKey          = attribute.Key("rotor.secret.key")
	AttrSource       = attribute.Key("rotor.secret.source")
	AttrErrorType    = attribute.Key("error.type")
	AttrAdopted      = attribute.Key("rotor.rotation.adopted")
	AttrRetryOutcome = attribute.Key("rotor.auth_retry.outcome")
	AttrKeyVersion   = attribute.Key("rotor.jwt.key_version")
)

// An Option configures the instruments New makes.
type Option func(*config)

type config struct {
	noKeys bool
}

// WithoutKeys leaves out the rotor.secret.key attribute everywhere: the
// metrics are then counted by source (and by Verifier only in aggregate).
// Use it when the keys are confidential or unbounded in number.
func WithoutKeys() Option {
	return func(c *config) { c.noKeys = true }
}

// Metrics holds the instruments. Its methods are safe for concurrent use.
type Metrics struct {
	cfg   config
	meter metric.Meter

	refreshes   metric.Int64Counter
	rejections  metric.Int64Counter
	rotations   metric.Int64Counter
	reloads     metric.Int64Counter
	authRetries metric.Int64Counter

	age           metric.Float64ObservableGauge
	failures      metric.Int64ObservableGauge
	verifications metric.Int64ObservableCounter
}

// New makes the instruments from a Meter of mp named ScopeName. It fails
// only when mp refuses an instrument.
func New(mp metric.MeterProvider, opts ...Option) (*Metrics, error) {
	if mp == nil {
		return nil, errors.New("otelmetrics: New(nil MeterProvider)")
	}
	m := &Metrics{meter: mp.Meter(ScopeName)}
	for _, o := range opts {
		o(&m.cfg)
	}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.refreshes = counter("rotor.secrets.refreshes", "{refresh}",
		"Outcomes of fetches of a secret's value; failures carry error.type.")
	m.rejections = counter("rotor.secrets.rejections", "{candidate}",
		"Candidate versions refused by a validator or lacking a field the Store serves.")
	m.rotations = counter("rotor.secrets.rotations", "{rotation}",
		"Swaps applied: a secret now serves another current version.")
	m.reloads = counter("rotor.secrets.reloads", "{reload}",
		"Reload rounds; those that applied nothing carry error.type.")
	m.authRetries = counter("rotor.secrets.auth_retries", "{retry}",
		"Authentication failures of wrapped calls, by what came of them.")
	var err error
	m.age, err = m.meter.Float64ObservableGauge("rotor.secrets.age", metric.WithUnit("s"),
		metric.WithDescription("Time since the value a key serves was fetched."))
	errs = append(errs, err)
	m.failures, err = m.meter.Int64ObservableGauge("rotor.secrets.consecutive_failures", metric.WithUnit("{failure}"),
		metric.WithDescription("Failed refreshes of a key since its last success."))
	errs = append(errs, err)
	m.verifications, err = m.meter.Int64ObservableCounter("rotor.jwtkeys.verifications", metric.WithUnit("{verification}"),
		metric.WithDescription("JWTs verified, by the key version that accepted them or the reason they were refused."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Observer returns the secrets.Observer that updates the counters; pass it
// to secrets.New with secrets.WithObserver. One Metrics may observe any
// number of Stores. Each event costs one counter update, which neither
// blocks nor does I/O, as secrets.Observer asks.
func (m *Metrics) Observer() secrets.Observer {
	ctx := context.Background()
	return secrets.Observer{
		Refresh: func(e secrets.RefreshEvent) {
			attrs := m.keyAttrs(e.Key, e.Source, 3)
			if e.Class != "" {
				attrs = append(attrs, AttrErrorType.String(e.Class))
			}
			m.refreshes.Add(ctx, 1, metric.WithAttributes(attrs...))
		},
		Reject: func(e secrets.RejectEvent) {
			m.rejections.Add(ctx, 1, metric.WithAttributes(m.keyAttrs(e.Key, e.Source, 2)...))
		},
		Rotate: func(e secrets.RotateEvent) {
			attrs := append(m.keyAttrs(e.Key, e.Source, 3), AttrAdopted.Bool(e.Adopted))
			m.rotations.Add(ctx, 1, metric.WithAttributes(attrs...))
		},
		Reload: func(e secrets.ReloadEvent) {
			if e.Err != nil {
				m.reloads.Add(ctx, 1, metric.WithAttributes(AttrErrorType.String(secrets.ErrorClass(e.Err))))
				return
			}
			m.reloads.Add(ctx, 1)
		},
		AuthRetry: func(e secrets.AuthRetryEvent) {
			m.authRetries.Add(ctx, 1, metric.WithAttributes(AttrRetryOutcome.String(string(e.Outcome))))
		},
	}
}

// ObserveStore registers s for the instruments read at collection time
// (rotor.secrets.age and rotor.secrets.consecutive_failures). Each
// collection reads s.Statuses, which takes the Store's lock briefly and
// does no I/O. Unregister the returned registration before closing s, or
// keep it for the life of the program; a closed Store reports what it last
// held.
func (m *Metrics) ObserveStore(s *secrets.Store) (metric.Registration, error) {
	if s == nil {
		return nil, errors.New("otelmetrics: ObserveStore(nil)")
	}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, st := range s.Statuses() {
			attrs := metric.WithAttributes(m.keyAttrs(st.Key, st.Source, 2)...)
			if st.Loaded {
				o.ObserveFloat64(m.age, st.Age.Seconds(), attrs)
			}
			o.ObserveInt64(m.failures, int64(st.Failures), attrs)
		}
		return nil
	}, m.age, m.failures)
}

// A VerificationCounter is what ObserveVerifier reads: *jwtkeys.Verifier
// implements it (see its VerificationCounts and Key methods), and this
// package need not import jwtkeys for it.
type VerificationCounter interface {
	// Key names the secret the verifier reads its keys from.
	Key() string
	// VerificationCounts calls f with each count: accepted tokens by key
	// version ("current", "previous") with reason "", and refused tokens
	// by reason with keyVersion "". It must not block.
	VerificationCounts(f func(keyVersion, reason string, n uint64))
}

// ObserveVerifier registers v for rotor.jwtkeys.verifications, read at each
// collection from v's counters. Register each Verifier once.
func (m *Metrics) ObserveVerifier(v VerificationCounter) (metric.Registration, error) {
	if v == nil {
		return nil, errors.New("otelmetrics: ObserveVerifier(nil)")
	}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		key := v.Key()
		v.VerificationCounts(func(keyVersion, reason string, n uint64) {
			attrs := make([]attribute.KeyValue, 0, 2)
			if !m.cfg.noKeys {
				attrs = append(attrs, AttrKey.String(key))
			}
			if keyVersion != "" {
				attrs = append(attrs, AttrKeyVersion.String(keyVersion))
			}
			if reason != "" {
				attrs = append(attrs, AttrErrorType.String(reason))
			}
			o.ObserveInt64(m.verifications, int64(min(n, 1<<63-1)), metric.WithAttributes(attrs...))
		})
		return nil
	}, m.verifications)
}

// keyAttrs returns the key and source attributes, with room for extra more.
func (m *Metrics) keyAttrs(key, source string, room int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, room)
	if !m.cfg.noKeys {
		attrs = append(attrs, AttrKey.String(key))
	}
	return append(attrs, AttrSource.String(source))
}
