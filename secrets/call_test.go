package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// pgError stands for pgconn.PgError: an error with an SQLSTATE.
type pgError struct{ code string }

func (e *pgError) Error() string    { return "pg: " + e.code }
func (e *pgError) SQLState() string { return e.code }

func TestViewIsConsistent(t *testing.T) {
	f := newFixture(t)
	f.src.Set("user", "u1")
	f.src.Set("pass", "p1")
	f.get("user")
	f.get("pass")
	v := f.store.View()
	u, _ := v.Get(f.ctx(), "user")
	f.src.Set("user", "u2")
	f.src.Set("pass", "p2")
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	p, _ := v.Get(f.ctx(), "pass")
	if u.Reveal() != "u1" || p.Reveal() != "p1" {
		t.Fatalf("a View mixed versions: %s/%s", u.Reveal(), p.Reveal())
	}
	// A key first loaded through the View is held by it.
	f.src.Set("late", "l1")
	if l, _ := v.Get(f.ctx(), "late"); l.Reveal() != "l1" {
		t.Fatal(l.Reveal())
	}
	f.src.Set("late", "l2")
	if err := f.store.Refresh(f.ctx(), "late"); err != nil {
		t.Fatal(err)
	}
	if l, _ := v.Get(f.ctx(), "late"); l.Reveal() != "l1" {
		t.Fatal("a View let a key change under it")
	}
	if got := strings.Join(v.Keys(), ","); got != "late,pass,user" {
		t.Fatalf("Keys = %s", got)
	}
	if fresh := f.get("user"); fresh.Reveal() != "u2" {
		t.Fatal("the Store did not move on")
	}
}

func TestWrapToolRetriesOnceAfterAuthFailure(t *testing.T) {
	f := newFixture(t, secrets.WithAuthWait(0))
	f.src.Set("db", "old")
	f.get("db")
	// The database has already moved to the new password; the Store has
	// not polled it yet.
	dbPassword := "new"
	f.src.Set("db", "new")

	var calls []string
	handler := func(ctx context.Context, req *struct{ ID int }, in string) (string, int, error) {
		pw, err := secrets.ViewFrom(ctx, f.store).Get(ctx, "db")
		if err != nil {
			return "", 0, err
		}
		calls = append(calls, pw.Reveal())
		if pw.Reveal() != dbPassword {
			return "", 0, fmt.Errorf("connect: %w", &pgError{"28P01"})
		}
		return "ok:" + in, req.ID, nil
	}
	wrapped := secrets.WrapTool(f.store, handler)
	f.clock.Advance(time.Second) // past the minimum backoff since the load
	res, out, err := wrapped(f.ctx(), &struct{ ID int }{7}, "q")
	if err != nil || res != "ok:q" || out != 7 {
		t.Fatalf("wrapped call: %q %d %v", res, out, err)
	}
	if strings.Join(calls, ",") != "old,new" {
		t.Fatalf("calls saw %v, want the old then the new password", calls)
	}

	// A second failure is returned as it is: no third try.
	dbPassword = "newer"
	f.src.Set("db", "also-wrong")
	f.clock.Advance(time.Second)
	calls = nil
	_, _, err = wrapped(f.ctx(), &struct{ ID int }{1}, "q")
	if !secrets.IsPostgresAuthError(err) || len(calls) != 2 {
		t.Fatalf("after two failures: err %v, %d calls", err, len(calls))
	}
	// Nothing changed at the source: no retry at all.
	f.clock.Advance(time.Second)
	calls = nil
	_, _, err = wrapped(f.ctx(), &struct{ ID int }{1}, "q")
	if err == nil || len(calls) != 1 {
		t.Fatalf("unchanged credentials were retried: %d calls", len(calls))
	}
	// Other errors are not retried.
	calls = nil
	_, _, err = secrets.WrapTool(f.store, func(ctx context.Context, _ int, _ int) (int, int, error) {
		secrets.ViewFrom(ctx, f.store).Get(ctx, "db")
		calls = append(calls, "x")
		return 0, 0, errors.New("syntax error")
	})(f.ctx(), 0, 0)
	if err == nil || len(calls) != 1 {
		t.Fatalf("a non-auth error was retried")
	}
}

func TestCallCustomClassifier(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", "2")
	errExpired := errors.New("token expired")
	f.clock.Advance(time.Second)
	n := 0
	err := secrets.Call(f.ctx(), f.store, func(ctx context.Context) error {
		n++
		v, _ := secrets.ViewFrom(ctx, f.store).Get(ctx, "k")
		if v.Reveal() == "1" {
			return errExpired
		}
		return nil
	}, secrets.RetryOn(func(err error) bool { return errors.Is(err, errExpired) }))
	if err != nil || n != 2 {
		t.Fatalf("Call: %v after %d tries", err, n)
	}
}

func TestClassifiers(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgError{"28P01"}, true},
		{fmt.Errorf("wrapped: %w", &pgError{"28000"}), true},
		{&pgError{"42P01"}, false},
		{&secrets.StatusError{Code: 401, Status: "401 Unauthorized"}, true},
		{&secrets.StatusError{Code: 403, Status: "403 Forbidden"}, false},
		{errors.New("401"), false},
		{nil, false},
	} {
		if got := secrets.IsAuthError(tc.err); got != tc.want {
			t.Errorf("IsAuthError(%v) = %v", tc.err, got)
		}
	}
}

// apiServer accepts one bearer token at a time, as an API whose key was
// rotated and the old one revoked.
type apiServer struct {
	mu     sync.Mutex
	valid  string
	bodies []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	a.bodies = append(a.bodies, string(body))
	if r.Header.Get("Authorization") != "Bearer "+a.valid {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	fmt.Fprint(w, "hello")
}

func TestTransport(t *testing.T) {
	f := newFixture(t)
	f.src.Set("api", "key-1")
	api := &apiServer{valid: "key-1"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: secrets.NewTransport(f.store, "api", secrets.WithBase(base))}

	post := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(f.ctx(), http.MethodPost, srv.URL, bytes.NewReader([]byte("payload")))
		return client.Do(req)
	}
	resp, err := post()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", err, resp)
	}
	resp.Body.Close()

	// Rotate: the API accepts only the new key; the Store still holds the old.
	api.mu.Lock()
	api.valid = "key-2"
	api.bodies = nil
	api.mu.Unlock()
	f.src.Set("api", "key-2")
	f.clock.Advance(time.Second)
	resp, err = post()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after rotation: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	api.mu.Lock()
	if len(api.bodies) != 2 || api.bodies[1] != "payload" {
		t.Fatalf("the retry did not replay the body: %q", api.bodies)
	}
	api.mu.Unlock()

	// Revoked with nothing new at the source: the 401 comes back as it is.
	api.mu.Lock()
	api.valid = "key-3"
	api.mu.Unlock()
	resp, err = post()
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a new key: %v %v", err, resp)
	}
	if err := secrets.CheckResponse(resp); !secrets.IsHTTPUnauthorized(err) {
		t.Fatalf("CheckResponse = %v", err)
	}
	resp.Body.Close()

	// Another header and prefix.
	var got string
	hdr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("X-Api-Key") }))
	defer hdr.Close()
	defer hdr.Client().Transport.(*http.Transport).CloseIdleConnections()
	c2 := &http.Client{Transport: secrets.NewTransport(f.store, "api", secrets.WithHeader("x-api-key", ""), secrets.WithBase(hdr.Client().Transport))}
	resp, err = c2.Get(hdr.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "key-2" {
		t.Fatalf("X-Api-Key = %q", got)
	}
}

func TestTransportMissingKey(t *testing.T) {
	f := newFixture(t)
	c := &http.Client{Transport: secrets.NewTransport(f.store, "missing")}
	_, err := c.Get("http://127.0.0.1:1/")
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestOverlapWarning(t *testing.T) {
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	st, err := secrets.New(nil, secrets.WithTTL(time.Minute), secrets.WithJitter(0.1), secrets.WithOverlap(2*time.Minute), secrets.WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.RecommendedOverlap() != 3*time.Minute+6*time.Second {
		t.Fatalf("RecommendedOverlap = %v", st.RecommendedOverlap())
	}
	if st.WorstCaseStaleness() != time.Minute+secrets.DefaultFetchTimeout {
		t.Fatalf("WorstCaseStaleness = %v", st.WorstCaseStaleness())
	}
	if !strings.Contains(logs.String(), "overlap window shorter than recommended") {
		t.Fatalf("no warning: %s", logs.String())
	}
	logs.Reset()
	st2, _ := secrets.New(nil, secrets.WithTTL(time.Minute), secrets.WithOverlap(time.Hour), secrets.WithLogger(l))
	defer st2.Close()
	if logs.Len() != 0 {
		t.Fatalf("a long enough window warned: %s", logs.String())
	}
}

func TestRefreshKeysForCredentialsReadElsewhere(t *testing.T) {
	f := newFixture(t)
	f.src.Set("pool-password", "old")
	f.get("pool-password")
	f.src.Set("pool-password", "new")
	f.clock.Advance(time.Second)
	tries := 0
	// The handler does not read the password itself: a pool does, from
	// the Store, when it connects.
	h := secrets.WrapTool(f.store, func(ctx context.Context, _, _ int) (int, int, error) {
		tries++
		pw, _ := f.store.Get(ctx, "pool-password")
		if pw.Reveal() != "new" {
			return 0, 0, &pgError{"28P01"}
		}
		return 1, 1, nil
	}, secrets.RefreshKeys("pool-password"))
	if _, _, err := h(f.ctx(), 0, 0); err != nil || tries != 2 {
		t.Fatalf("err %v after %d tries", err, tries)
	}
}

// TestAuthFailuresDoNotFloodTheBackend: a credential revoked but not yet
// rotated makes every call fail; the backend is asked at most once per
// minimum backoff, not once per failed call.
func TestAuthFailuresDoNotFloodTheBackend(t *testing.T) {
	f := newFixture(t, secrets.WithAuthWait(0))
	f.src.Set("db", "revoked")
	f.get("db")
	h := secrets.WrapTool(f.store, func(ctx context.Context, _, _ int) (int, int, error) {
		secrets.ViewFrom(ctx, f.store).Get(ctx, "db")
		return 0, 0, &pgError{"28P01"}
	})
	f.clock.Advance(time.Second)
	for i := 0; i < 50; i++ {
		if _, _, err := h(f.ctx(), 0, 0); err == nil {
			t.Fatal("no error")
		}
	}
	if c := f.src.count("db"); c != 2 {
		t.Fatalf("50 failed calls cost %d fetches, want the load and one refresh", c)
	}
	f.clock.Advance(time.Second)
	h(f.ctx(), 0, 0)
	if c := f.src.count("db"); c != 3 {
		t.Fatalf("after the backoff: %d fetches, want 3", c)
	}
}

// TestAuthFailureRefreshesAKeyJustFetched: the first authentication failure
// forces a refresh even when the key was fetched a moment ago (by a poll
// that found nothing new yet).
func TestAuthFailureRefreshesAKeyJustFetched(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	f.src.Set("db", "new")
	tries := 0
	h := secrets.WrapTool(f.store, func(ctx context.Context, _, _ int) (int, int, error) {
		tries++
		if pw, _ := secrets.ViewFrom(ctx, f.store).Get(ctx, "db"); pw.Reveal() != "new" {
			return 0, 0, &pgError{"28P01"}
		}
		return 0, 0, nil
	})
	if _, _, err := h(f.ctx(), 0, 0); err != nil || tries != 2 {
		t.Fatalf("err %v after %d tries", err, tries)
	}
}
