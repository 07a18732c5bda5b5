package otelmetrics_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/otelmetrics"
	"github.com/rotorhq/rotor/sources/memory"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Two HMAC signing keys of 32 bytes.
const (
	keyA = "A-0123456789abcdef0123456789abcd"
	keyB = "B-0123456789abcdef0123456789abcd"
)

// flaky is a memory source that can be made to fail.
type flaky struct {
	*memory.Source
	mu  sync.Mutex
	err error
}

func (f *flaky) fail(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *flaky) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return secrets.Versions{}, err
	}
	return f.Source.Fetch(ctx, key)
}

// instrument is what the test expects of one instrument's shape.
type instrument struct {
	unit      string
	kind      string // "counter" or "gauge"
	floatData bool
}

var instruments = map[string]instrument{
	"rotor.secrets.refreshes":            {"{refresh}", "counter", false},
	"rotor.secrets.rejections":           {"{candidate}", "counter", false},
	"rotor.secrets.rotations":            {"{rotation}", "counter", false},
	"rotor.secrets.reloads":              {"{reload}", "counter", false},
	"rotor.secrets.auth_retries":         {"{retry}", "counter", false},
	"rotor.secrets.age":                  {"s", "gauge", true},
	"rotor.secrets.consecutive_failures": {"{failure}", "gauge", false},
	"rotor.jwtkeys.verifications":        {"{verification}", "counter", false},
}

// collect reads every data point as "name{attr=value,...}" → value, and
// checks each instrument's unit, kind and scope.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmetrics.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			want, ok := instruments[m.Name]
			if !ok {
				t.Errorf("unexpected instrument %s", m.Name)
				continue
			}
			if m.Unit != want.unit || m.Description == "" {
				t.Errorf("%s: unit %q, description %q", m.Name, m.Unit, m.Description)
			}
			kind := ""
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if d.IsMonotonic && d.Temporality == metricdata.CumulativeTemporality {
					kind = "counter"
				}
				for _, p := range d.DataPoints {
					out[point(m.Name, p.Attributes.ToSlice())] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				kind = "gauge"
				for _, p := range d.DataPoints {
					out[point(m.Name, p.Attributes.ToSlice())] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				kind = "gauge"
				if !want.floatData {
					kind = "float gauge"
				}
				for _, p := range d.DataPoints {
					out[point(m.Name, p.Attributes.ToSlice())] = p.Value
				}
			default:
				kind = fmt.Sprintf("%T", m.Data)
			}
			if kind != want.kind {
				t.Errorf("%s is a %s, want a %s", m.Name, kind, want.kind)
			}
		}
	}
	return out
}

// point names a data point: the instrument and its attributes, sorted.
func point(name string, attrs []attribute.KeyValue) string {
	parts := make([]string, len(attrs))
	for i, kv := range attrs {
		parts[i] = string(kv.Key) + "=" + kv.Value.Emit()
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// TestInstruments drives a Store and a Verifier through a scripted sequence
// on a fake clock (loads, an authentication failure cured by a refresh, a
// reload that rotates both keys, a token verified with the previous key, a
// malformed token, a failed refresh, a rejected candidate, a reload that
// fails) and asserts every instrument's every data point.
func TestInstruments(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)
	m, err := otelmetrics.New(provider)
	if err != nil {
		t.Fatal(err)
	}

	clk := fakeclock.New(t0)
	src := &flaky{Source: memory.New()}
	src.Set("db", "password-1")
	src.Set("jwt", keyA)
	refuse := func(ctx context.Context, key string, c secrets.Versions) error {
		if c.Current.Reveal() == "bad-password" {
			return fmt.Errorf("login refused")
		}
		return nil
	}
	store, err := secrets.New(src, secrets.WithClock(clk), secrets.WithTTL(time.Hour),
		secrets.WithValidator(refuse, "db"), secrets.WithObserver(m.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	regStore, err := m.ObserveStore(store)
	if err != nil {
		t.Fatal(err)
	}
	defer regStore.Unregister()
	verifier, err := jwtkeys.NewVerifier(store, "jwt", jwtkeys.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	regVerifier, err := m.ObserveVerifier(verifier)
	if err != nil {
		t.Fatal(err)
	}
	defer regVerifier.Unregister()
	signer, err := jwtkeys.NewSigner(store, "jwt")
	if err != nil {
		t.Fatal(err)
	}

	// t0: first loads, and a token signed and verified with the current key.
	if _, err := store.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	old, err := signer.Sign(ctx, &jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(t0.Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}

	// The database takes a new password that the Store has not polled: a
	// call fails authentication, the refresh finds the new one, the retry
	// succeeds.
	src.Set("db", "password-2")
	login := func(ctx context.Context) error {
		pw, err := secrets.ViewFrom(ctx, store).Get(ctx, "db")
		if err != nil {
			return err
		}
		if pw.Reveal() != "password-2" {
			return &secrets.StatusError{Code: 401, Status: "401 Unauthorized"}
		}
		return nil
	}
	if err := secrets.Call(ctx, store, login); err != nil {
		t.Fatal(err)
	}

	// SIGHUP after both secrets rotated; the old token now verifies with
	// the previous key, and a malformed one is refused.
	src.Set("db", "password-3")
	src.Set("jwt", keyB)
	if err := store.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, "not.a.token"); err == nil {
		t.Fatal("a malformed token verified")
	}

	// 20 seconds on (no refresh is due): the backend fails, then serves a
	// candidate the validator refuses, to a Refresh and to a Reload.
	clk.Advance(20 * time.Second)
	src.fail(fmt.Errorf("backend unavailable: %w", secrets.ErrTransient))
	if err := store.Refresh(ctx, "db"); err == nil {
		t.Fatal("Refresh succeeded against a failing backend")
	}
	src.fail(nil)
	src.Set("db", "bad-password")
	if err := store.Refresh(ctx, "db"); err == nil {
		t.Fatal("a rejected candidate was applied")
	}
	if err := store.Reload(ctx); err == nil {
		t.Fatal("a reload applied a rejected candidate")
	}

	want := map[string]float64{
		"rotor.secrets.refreshes{rotor.secret.key=db,rotor.secret.source=default}":                               3, // load, auth refresh, reload
		"rotor.secrets.refreshes{rotor.secret.key=jwt,rotor.secret.source=default}":                              2, // load, reload
		"rotor.secrets.refreshes{error.type=transient,rotor.secret.key=db,rotor.secret.source=default}":          1,
		"rotor.secrets.refreshes{error.type=rejected,rotor.secret.key=db,rotor.secret.source=default}":           2,
		"rotor.secrets.rejections{rotor.secret.key=db,rotor.secret.source=default}":                              2,
		"rotor.secrets.rotations{rotor.rotation.adopted=false,rotor.secret.key=db,rotor.secret.source=default}":  2,
		"rotor.secrets.rotations{rotor.rotation.adopted=false,rotor.secret.key=jwt,rotor.secret.source=default}": 1,
		"rotor.secrets.reloads{}":                                                              1,
		"rotor.secrets.reloads{error.type=rejected}":                                           1,
		"rotor.secrets.auth_retries{rotor.auth_retry.outcome=refreshed}":                       1,
		"rotor.secrets.age{rotor.secret.key=db,rotor.secret.source=default}":                   20,
		"rotor.secrets.age{rotor.secret.key=jwt,rotor.secret.source=default}":                  20,
		"rotor.secrets.consecutive_failures{rotor.secret.key=db,rotor.secret.source=default}":  3,
		"rotor.secrets.consecutive_failures{rotor.secret.key=jwt,rotor.secret.source=default}": 0,
		"rotor.jwtkeys.verifications{rotor.jwt.key_version=current,rotor.secret.key=jwt}":      1,
		"rotor.jwtkeys.verifications{rotor.jwt.key_version=previous,rotor.secret.key=jwt}":     1,
		"rotor.jwtkeys.verifications{error.type=malformed,rotor.secret.key=jwt}":               1,
	}
	got := collect(t, reader)
	compare(t, got, want)
	seen := map[string]bool{}
	for p := range got {
		seen[p[:strings.IndexByte(p, '{')]] = true
	}
	for name := range instruments {
		if !seen[name] {
			t.Errorf("instrument %s has no data point", name)
		}
	}
	for p := range got {
		for _, v := range []string{"password-", "bad-password", keyA, keyB} {
			if strings.Contains(p, v) {
				t.Errorf("a data point holds a value: %s", p)
			}
		}
	}

	// Counters are cumulative; the age follows the clock.
	clk.Advance(10 * time.Second)
	got = collect(t, reader)
	if a := got["rotor.secrets.age{rotor.secret.key=db,rotor.secret.source=default}"]; a != 30 {
		t.Errorf("age after 10 more seconds = %v, want 30", a)
	}
	if n := got["rotor.secrets.refreshes{rotor.secret.key=db,rotor.secret.source=default}"]; n != 3 {
		t.Errorf("refreshes changed between collections: %v", n)
	}
}

// TestWithoutKeys: no data point names a key.
func TestWithoutKeys(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)
	m, err := otelmetrics.New(provider, otelmetrics.WithoutKeys())
	if err != nil {
		t.Fatal(err)
	}
	src := memory.New()
	src.Set("db", "password")
	store, err := secrets.New(src, secrets.WithClock(fakeclock.New(t0)), secrets.WithObserver(m.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, err := m.ObserveStore(store)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if _, err := store.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	compare(t, collect(t, reader), map[string]float64{
		"rotor.secrets.refreshes{rotor.secret.source=default}":            1,
		"rotor.secrets.age{rotor.secret.source=default}":                  0,
		"rotor.secrets.consecutive_failures{rotor.secret.source=default}": 0,
	})
}

// TestNilArguments: the constructors refuse nil rather than panic later.
func TestNilArguments(t *testing.T) {
	if _, err := otelmetrics.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	provider := sdkmetric.NewMeterProvider()
	defer provider.Shutdown(context.Background())
	m, err := otelmetrics.New(provider)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ObserveStore(nil); err == nil {
		t.Error("ObserveStore(nil) succeeded")
	}
	if _, err := m.ObserveVerifier(nil); err == nil {
		t.Error("ObserveVerifier(nil) succeeded")
	}
}

func compare(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var names []string
	for p := range want {
		names = append(names, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	for _, p := range names {
		g, gok := got[p]
		w, wok := want[p]
		switch {
		case !gok:
			t.Errorf("missing %s (want %v)", p, w)
		case !wok:
			t.Errorf("unexpected %s = %v", p, g)
		case g != w:
			t.Errorf("%s = %v, want %v", p, g, w)
		}
	}
}
