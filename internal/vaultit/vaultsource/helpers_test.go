package vaultsource_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// testCtx returns a context that ends with the test, or after a minute.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// requests counts the HTTP requests a client sends, by method and path.
type requests struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []string
}

func (r *requests) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.log = append(r.log, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// take returns the requests sent since the last take.
func (r *requests) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

// newClient returns a client of v as a program builds one: default
// configuration (two retries of 1–1.5s), the given token (none for ""). Its
// requests are counted in the returned recorder.
func newClient(t *testing.T, v *vaulttest.Server, token string) (*api.Client, *requests) {
	t.Helper()
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		t.Fatal(cfg.Error)
	}
	cfg.Address = v.Addr
	// A request canceled while its connection is being dialed (the Store
	// cancels its fetches on Close) leaves the new connection in the idle
	// pool, and CloseIdleConnections misses it if the dial ends later.
	// Vault's HTTP server, shutting down at the end of the test, then waits
	// 5 seconds for it (net/http counts a connection that never sent a
	// request as active for that long). Without keep-alives the transport
	// closes such a connection at once.
	cfg.HttpClient.Transport.(*http.Transport).DisableKeepAlives = true
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	rec := &requests{base: cfg.HttpClient.Transport}
	cfg.HttpClient.Transport = rec
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	if token == "" {
		c.ClearToken()
	} else {
		c.SetToken(token)
	}
	return c, rec
}

// newSource returns a source over client, closed when the test ends.
func newSource(t *testing.T, client *api.Client, opts ...vault.Option) *vault.Source {
	t.Helper()
	src, err := vault.New(client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src
}

// newStore returns a Store with src as the vault scheme's source, closed
// when the test ends (before the source: cleanups run last-in first-out).
func newStore(t *testing.T, src secrets.Source, opts ...secrets.Option) *secrets.Store {
	t.Helper()
	st, err := secrets.New(nil, append([]secrets.Option{secrets.WithSource("vault", src)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// appRole sets up a role with policies and returns its auth method.
func appRole(t *testing.T, v *vaulttest.Server, role string, policies []string, ttl, maxTTL time.Duration) api.AuthMethod {
	t.Helper()
	roleID, secretID := v.EnableAppRole(t, role, policies, ttl, maxTTL)
	m, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readPolicy grants what the source needs on a KV v2 mount under prefix.
func readPolicy(mount, prefix string) string {
	return fmt.Sprintf(`
path "%[1]s/data/%[2]s*"     { capabilities = ["read"] }
path "%[1]s/metadata/%[2]s*" { capabilities = ["read"] }
`, mount, prefix)
}

// put writes data as a new version of a KV v2 secret and returns its number.
func put(t *testing.T, c *api.Client, mount, path string, data map[string]any) int {
	t.Helper()
	s, err := c.KVv2(mount).Put(context.Background(), path, data)
	if err != nil {
		t.Fatalf("put %s/%s: %v", mount, path, err)
	}
	return s.VersionMetadata.Version
}

// events records a source's token events and lets a test wait for them.
type events struct {
	mu   sync.Mutex
	evs  []vault.TokenEvent
	note chan struct{}
}

func newEvents() *events { return &events{note: make(chan struct{}, 1)} }

func (e *events) record(ev vault.TokenEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	select {
	case e.note <- struct{}{}:
	default:
	}
}

func (e *events) count(kind vault.TokenEventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// last returns the last event of kind.
func (e *events) last(kind vault.TokenEventKind) (vault.TokenEvent, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		if e.evs[i].Kind == kind {
			return e.evs[i], true
		}
	}
	return vault.TokenEvent{}, false
}

// waitCount waits until n events of kind have been recorded.
func (e *events) waitCount(t *testing.T, ctx context.Context, kind vault.TokenEventKind, n int) {
	t.Helper()
	for e.count(kind) < n {
		select {
		case <-e.note:
		case <-ctx.Done():
			t.Fatalf("waiting for %d %v events: %v; have %s", n, kind, ctx.Err(), e)
		}
	}
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.evs {
		fmt.Fprintf(&b, "[%v ttl=%v err=%v] ", ev.Kind, ev.TTL, ev.Err)
	}
	return b.String()
}

// warnings counts the log records at Warn level and above: a Store logs
// each failed refresh so.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// readers reads key from st in a loop on several goroutines and, with
// refresh set, refreshes it (a real fetch from Vault) on another, until the
// returned function is called; that function fails the test if any read
// returned an error or a value other than want, or any refresh failed.
func readers(t *testing.T, st *secrets.Store, key, want string, refresh bool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				s, err := st.Get(ctx, key)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					report(fmt.Errorf("Get: %w", err))
				case s.Reveal() != want:
					report(fmt.Errorf("Get: version %s, not the value written", s.Version()))
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !refresh {
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			err := st.Refresh(ctx, key)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				report(fmt.Errorf("Refresh: %w", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		t.Helper()
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("while reading: %v", err)
		}
	}
}

// waitStatus waits until the Store's status of key satisfies cond. The
// status is in memory, and a failed refresh publishes no event, so it is
// checked on a short tick.
func waitStatus(t *testing.T, ctx context.Context, st *secrets.Store, key string, what string, cond func(secrets.KeyStatus) bool) secrets.KeyStatus {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ks, ok := st.Status(key)
		if ok && cond(ks) {
			return ks
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; status %+v", what, ctx.Err(), ks)
		case <-tick.C:
		}
	}
}
