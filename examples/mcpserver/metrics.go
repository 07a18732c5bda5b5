package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/otelmetrics"
)

// exampleMetrics serves the Store's and the Verifier's metrics for
// Prometheus at /metrics (the -metrics flag): secrets/otelmetrics records
// them through the OpenTelemetry SDK, whose Prometheus exporter exposes
// them as rotor_secrets_refreshes_total, rotor_secrets_age_seconds,
// rotor_jwtkeys_verifications_total and so on. A nil *exampleMetrics (no
// -metrics) does nothing.
type exampleMetrics struct {
	m        *otelmetrics.Metrics
	provider *sdkmetric.MeterProvider
	srv      *http.Server
	errc     chan error
	regs     []interface{ Unregister() error }
}

// startMetrics starts serving metrics on addr and says where on out; with
// addr "" it returns nil. Stop it with stop.
func startMetrics(addr string, out io.Writer) (*exampleMetrics, error) {
	if addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m, err := otelmetrics.New(provider)
	if err != nil {
		_ = provider.Shutdown(context.Background())
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = provider.Shutdown(context.Background())
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	x := &exampleMetrics{
		m:        m,
		provider: provider,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		errc:     make(chan error, 1),
	}
	go func() { x.errc <- x.srv.Serve(l) }()
	fmt.Fprintf(out, "metrics for Prometheus at http://%s/metrics (key names included: keep the address to operators)\n", l.Addr())
	return x, nil
}

// options returns the Store options that report to the metrics.
func (x *exampleMetrics) options() []secrets.Option {
	if x == nil {
		return nil
	}
	return []secrets.Option{secrets.WithObserver(x.m.Observer())}
}

// observeStore adds the Store's age and failure gauges.
func (x *exampleMetrics) observeStore(s *secrets.Store) error {
	if x == nil {
		return nil
	}
	r, err := x.m.ObserveStore(s)
	if err == nil {
		x.regs = append(x.regs, r)
	}
	return err
}

// observeVerifier adds a Verifier's counts (a *jwtkeys.Verifier).
func (x *exampleMetrics) observeVerifier(v otelmetrics.VerificationCounter) error {
	if x == nil {
		return nil
	}
	r, err := x.m.ObserveVerifier(v)
	if err == nil {
		x.regs = append(x.regs, r)
	}
	return err
}

// stop stops serving and shuts the SDK down.
func (x *exampleMetrics) stop() error {
	if x == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{x.srv.Shutdown(ctx)}
	if err := <-x.errc; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	for _, r := range x.regs {
		errs = append(errs, r.Unregister())
	}
	errs = append(errs, x.provider.Shutdown(ctx))
	return errors.Join(errs...)
}
