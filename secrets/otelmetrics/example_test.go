package otelmetrics_test

import (
	"context"
	"fmt"
	"log"
	"sort"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/otelmetrics"
	"github.com/rotorhq/rotor/sources/memory"
)

// A Store reporting to OpenTelemetry. Here the SDK's in-memory reader stands
// for an exporter (Prometheus, OTLP): the counters after a first load and a
// reload that found a rotated password.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)

	m, err := otelmetrics.New(provider)
	if err != nil {
		log.Fatal(err)
	}
	src := memory.New()
	src.Set("db", "first-password")
	store, err := secrets.New(src, secrets.WithObserver(m.Observer()))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	reg, err := m.ObserveStore(store) // the age and failure gauges
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	if _, err := store.Get(ctx, "db"); err != nil {
		log.Fatal(err)
	}
	src.Set("db", "second-password")
	if err := store.Reload(ctx); err != nil {
		log.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			sum, ok := metric.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, p := range sum.DataPoints {
				key, _ := p.Attributes.Value(otelmetrics.AttrKey)
				lines = append(lines, fmt.Sprintf("%s key=%q: %d", metric.Name, key.AsString(), p.Value))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// rotor.secrets.refreshes key="db": 2
	// rotor.secrets.reloads key="": 1
	// rotor.secrets.rotations key="db": 1
}
