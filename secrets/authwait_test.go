package secrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// parked returns how many calls are parked in the wait for a newer
// credential: blocked in its select, not refreshing.
func parked() int {
	buf := make([]byte, 1<<20)
	m := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:m]), "\n\n") {
		// The header says the goroutine is blocked in a select, and the
		// innermost frame is the wait's.
		lines := strings.SplitN(g, "\n", 3)
		if len(lines) >= 2 && strings.Contains(lines[0], "[select") &&
			strings.HasPrefix(lines[1], "github.com/rotorhq/rotor/secrets.(*Store).awaitNewer(") {
			count++
		}
	}
	return count
}

// waitParked waits until n calls are parked in the wait. The deadline only
// turns a bug into a failure.
func waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := parked()
		if count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls parked in the wait, want %d", count, n)
		}
		runtime.Gosched()
	}
}

// database stands for a downstream that accepts one password at a time.
type database struct {
	mu       sync.Mutex
	password string
	tries    []string
}

func (d *database) set(pw string) { d.mu.Lock(); d.password = pw; d.mu.Unlock() }

func (d *database) login(pw string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries = append(d.tries, pw)
	if pw != d.password {
		return &pgError{"28P01"}
	}
	return nil
}

func (d *database) tried() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tries, ",")
}

// query is a tool handler that logs in with the password it reads.
func query(st *secrets.Store, db *database) func(context.Context, struct{}, struct{}) (struct{}, struct{}, error) {
	return func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		pw, err := secrets.ViewFrom(ctx, st).Get(ctx, "db")
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		return struct{}{}, struct{}{}, db.login(pw.Reveal())
	}
}

// TestAuthFailureWaitsForTheStoreToCatchUp: the database takes the new
// password before the store holds it (ALTER ROLE first). The call that meets
// the old password's failure waits, the store gets the new one a moment
// later, and the call succeeds on its retry.
func TestAuthFailureWaitsForTheStoreToCatchUp(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	db := &database{password: "new"} // ALTER ROLE has run
	h := secrets.WrapTool(f.store, query(f.store, db))

	done := make(chan error, 1)
	go func() { _, _, err := h(f.ctx(), struct{}{}, struct{}{}); done <- err }()
	waitParked(t, 1)
	if c := f.src.count("db"); c != 2 {
		t.Fatalf("%d fetches before the wait, want the load and one forced refresh", c)
	}
	f.src.Set("db", "new") // the store gets the new password
	f.clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	if got := db.tried(); got != "old,new" {
		t.Fatalf("logins %s, want old then new", got)
	}
}

// TestAuthFailureWaitEndsAtTheChange: a change applied by other means than
// the wait's own refreshes (a watch, a poll, a reload) ends the wait at once.
func TestAuthFailureWaitEndsAtTheChange(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	db := &database{password: "new"}
	h := secrets.WrapTool(f.store, query(f.store, db))
	done := make(chan error, 1)
	go func() { _, _, err := h(f.ctx(), struct{}{}, struct{}{}); done <- err }()
	waitParked(t, 1)
	f.src.Set("db", "new")
	if err := f.store.Reload(f.ctx()); err != nil { // SIGHUP
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the call failed: %v", err)
	}
}

// TestAuthFailureWaitIsShared: many calls that fail on one credential wait
// together and cost the backend one refresh per minimum backoff, not one
// per call; all succeed once the new credential lands.
func TestAuthFailureWaitIsShared(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	db := &database{password: "new"}
	h := secrets.WrapTool(f.store, query(f.store, db))
	const calls = 20
	errs := make(chan error, calls)
	for range calls {
		go func() { _, _, err := h(f.ctx(), struct{}{}, struct{}{}); errs <- err }()
	}
	waitParked(t, calls)
	if c := f.src.count("db"); c != 2 {
		t.Fatalf("%d failed calls cost %d fetches, want the load and one refresh", calls, c-1)
	}
	for i := 1; i <= 3; i++ {
		f.clock.Advance(time.Second)
		f.src.waitFetches(t, "db", 2+i)
		waitParked(t, calls)
	}
	f.src.Set("db", "new")
	f.clock.Advance(time.Second)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("a call failed: %v", err)
		}
	}
	if c := f.src.count("db"); c != 6 {
		t.Fatalf("%d fetches, want 6: the load, and one refresh a second for 4 seconds", c)
	}
}

// TestRevokedCredentialFailsWithinTheWait: with nothing coming, every call
// fails with its own error once the wait has passed, and the backend saw one
// refresh per minimum backoff.
func TestRevokedCredentialFailsWithinTheWait(t *testing.T) {
	f := newFixture(t, secrets.WithAuthWait(3*time.Second))
	f.src.Set("db", "revoked")
	f.get("db")
	db := &database{password: "unknown to the store"}
	h := secrets.WrapTool(f.store, query(f.store, db))
	const calls = 20
	errs := make(chan error, calls)
	for range calls {
		go func() { _, _, err := h(f.ctx(), struct{}{}, struct{}{}); errs <- err }()
	}
	waitParked(t, calls)
	for i := 1; i <= 3; i++ {
		f.clock.Advance(time.Second)
		f.src.waitFetches(t, "db", 2+i)
		if i < 3 {
			waitParked(t, calls)
		}
	}
	for range calls {
		if err := <-errs; !secrets.IsPostgresAuthError(err) {
			t.Fatalf("got %v, want the call's own authentication error", err)
		}
	}
	if c := f.src.count("db"); c != 5 {
		t.Fatalf("%d fetches, want 5: the load and one refresh a second", c)
	}
	if got := strings.Count(db.tried(), "revoked"); got != calls {
		t.Fatalf("%d logins for %d calls: a call was retried with nothing new", got, calls)
	}
}

// TestAuthFailureWaitBoundedByContext: the caller's context ends the wait;
// the call returns its own error.
func TestAuthFailureWaitBoundedByContext(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	h := secrets.WrapTool(f.store, query(f.store, &database{password: "new"}))
	ctx, cancel := context.WithCancel(f.ctx())
	done := make(chan error, 1)
	go func() { _, _, err := h(ctx, struct{}{}, struct{}{}); done <- err }()
	waitParked(t, 1)
	cancel()
	if err := <-done; !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v, want the authentication error", err)
	}
}

// TestCloseEndsAuthFailureWait: Close does not wait for a call's wait.
func TestCloseEndsAuthFailureWait(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "old")
	f.get("db")
	h := secrets.WrapTool(f.store, query(f.store, &database{password: "new"}))
	done := make(chan error, 1)
	go func() { _, _, err := h(context.Background(), struct{}{}, struct{}{}); done <- err }()
	waitParked(t, 1)
	f.store.Close()
	if err := <-done; !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v, want the authentication error", err)
	}
}

// TestRejectedCandidateRetriedWhenServedFails: the store holds the new
// password before the database takes it, and the validator rejects it; when
// the database switches and the served password fails, the candidate is
// validated again and the call succeeds.
func TestRejectedCandidateRetriedWhenServedFails(t *testing.T) {
	db := &database{password: "old"}
	validate := func(ctx context.Context, key string, c secrets.Versions) error {
		return db.login(c.Current.Reveal())
	}
	f := newFixture(t, secrets.WithValidator(validate, "db"))
	f.src.Set("db", "old")
	f.get("db")
	f.src.Set("db", "new")
	if err := f.store.Refresh(f.ctx(), "db"); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Refresh = %v, want the candidate rejected", err)
	}
	db.set("new") // ALTER ROLE
	h := secrets.WrapTool(f.store, query(f.store, db))
	if _, _, err := h(f.ctx(), struct{}{}, struct{}{}); err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	if got := f.get("db").Reveal(); got != "new" {
		t.Fatalf("serving %q", got)
	}
}

// TestTransportWaitsForTheStore: a 401 from an upstream that took the new
// key before the store holds it waits for the store, then sends the request
// again with the new key.
func TestTransportWaitsForTheStore(t *testing.T) {
	var want atomic.Value
	want.Store("Bearer new")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()
	f := newFixture(t)
	f.src.Set("key", "old")
	f.get("key")
	client := &http.Client{Transport: secrets.NewTransport(f.store, "key")}
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(f.ctx(), http.MethodGet, upstream.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitParked(t, 1)
	f.src.Set("key", "new")
	f.clock.Advance(time.Second)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("status %d, want 204 after the retry", code)
	}
}

// TestNestedWaitsOnce: a Transport inside a wrapped call waits, and the
// wrapped call that sees the 401 it returns does not wait a second time.
func TestNestedWaitsOnce(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer upstream.Close()
	f := newFixture(t, secrets.WithAuthWait(2*time.Second))
	f.src.Set("key", "revoked")
	f.get("key")
	client := &http.Client{Transport: secrets.NewTransport(f.store, "key")}
	done := make(chan error, 1)
	go func() {
		// No deadline: a second wait would park the call for good.
		done <- secrets.Call(context.Background(), f.store, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return secrets.CheckResponse(resp)
		})
	}()
	for range 2 {
		waitParked(t, 1)
		f.clock.Advance(time.Second)
	}
	for {
		select {
		case err := <-done:
			if !secrets.IsHTTPUnauthorized(err) {
				t.Fatalf("got %v, want the 401", err)
			}
			return
		default:
		}
		if parked() > 0 {
			f.store.Close() // release it
			<-done
			t.Fatal("the wrapped call waited a second time")
		}
		runtime.Gosched()
	}
}

// TestAuthWaitOption: a negative wait is refused; zero fails at once.
func TestAuthWaitOption(t *testing.T) {
	if _, err := secrets.New(newCtl(), secrets.WithAuthWait(-time.Second)); err == nil {
		t.Fatal("a negative wait was accepted")
	}
	f := newFixture(t, secrets.WithAuthWait(0))
	f.src.Set("db", "old")
	f.get("db")
	h := secrets.WrapTool(f.store, query(f.store, &database{password: "new"}))
	if _, _, err := h(f.ctx(), struct{}{}, struct{}{}); !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v, want the authentication error at once", err)
	}
}

// stagedSrc is a source whose secrets may carry a pending version, as AWS
// Secrets Manager's do during a rotation (AWSPENDING).
type stagedSrc struct {
	mu sync.Mutex
	v  map[string]secrets.Versions
	n  int
}

func (s *stagedSrc) set(key, cur, prev, pend string) {
	mk := func(v string) secrets.Secret {
		if v == "" {
			return secrets.Secret{}
		}
		return secrets.NewSecretString(key, "v-"+v, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v == nil {
		s.v = map[string]secrets.Versions{}
	}
	s.v[key] = secrets.Versions{Current: mk(cur), Previous: mk(prev), Pending: mk(pend)}
}

func (s *stagedSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	v, ok := s.v[key]
	if !ok {
		return secrets.Versions{}, secrets.ErrNotFound
	}
	return v, nil
}

func versionsOf(t *testing.T, st *secrets.Store, key string) string {
	t.Helper()
	v, err := st.Versions(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v.Current.Reveal() + "/" + v.Previous.Reveal() + "/" + v.Pending.Reveal()
}

// TestPendingAdoptedWhenServedFails follows AWS's single-user scheme: the
// new password is staged (AWSPENDING), set on the database, and only then
// made current. Between the last two steps the current one fails: the call
// that meets the failure adopts the pending one, which its validator
// accepts. When the rotation finishes the Store serves the same, and
// subscribers heard of one change only.
func TestPendingAdoptedWhenServedFails(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "older", "")
	db := &database{password: "old"}
	validate := func(ctx context.Context, key string, c secrets.Versions) error {
		return db.login(c.Current.Reveal())
	}
	st, err := secrets.New(src, secrets.WithValidator(validate, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	sub := st.Subscribe()
	defer sub.Close()
	if _, err := st.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}

	src.set("db", "old", "older", "new") // createSecret: staged
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "old/older/new" {
		t.Fatalf("serving %s after the staging, want old with new pending", got)
	}
	if s, _ := st.Status("db"); s.PendingVersion != "v-new" || s.Version != "v-old" {
		t.Fatalf("status %+v", s)
	}
	heard := func() string {
		var out []string
		for _, c := range sub.Changes() {
			out = append(out, c.OldVersion+">"+c.NewVersion)
		}
		return strings.Join(out, ",")
	}
	if got := heard(); got != "" {
		t.Fatalf("subscribers heard %q of a staging, which changes nothing served", got)
	}

	db.set("new") // setSecret
	h := secrets.WrapTool(st, query(st, db))
	if _, _, err := h(ctx, struct{}{}, struct{}{}); err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	if got := versionsOf(t, st, "db"); got != "new/old/" {
		t.Fatalf("serving %s, want the pending version adopted", got)
	}
	if got := heard(); got != "v-old>v-new" {
		t.Fatalf("subscribers heard %q, want the adoption", got)
	}
	// A poll before finishSecret keeps the adopted version.
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "new/old/" {
		t.Fatalf("serving %s after a poll, want the adopted version kept", got)
	}
	src.set("db", "new", "old", "") // finishSecret
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "new/old/" {
		t.Fatalf("serving %s after the rotation finished", got)
	}
	if got := heard(); got != "" {
		t.Fatalf("subscribers heard %q after the adoption, want nothing", got)
	}
}

// TestPendingNotAdoptedWhenValidatorRejects: a pending version that the
// validator refuses (set on the database only later) is not served.
func TestPendingNotAdoptedWhenValidatorRejects(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "new")
	db := &database{password: "neither"} // the old one was revoked, the new one not set yet
	validate := func(ctx context.Context, key string, c secrets.Versions) error {
		return db.login(c.Current.Reveal())
	}
	st, err := secrets.New(src, secrets.WithValidator(validate, "db"), secrets.WithAuthWait(0))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	h := secrets.WrapTool(st, query(st, db))
	if _, _, err := h(ctx, struct{}{}, struct{}{}); !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v, want the authentication error", err)
	}
	if got := versionsOf(t, st, "db"); got != "old//new" {
		t.Fatalf("serving %s, want old with new still pending", got)
	}
}

// TestAdoptedPendingDroppedOnRollback: a rotation that is undone (its
// pending version discarded) brings the Store back to the current version.
func TestAdoptedPendingDroppedOnRollback(t *testing.T) {
	src := &stagedSrc{}
	src.set("db", "old", "", "new")
	db := &database{password: "new"}
	st, err := secrets.New(src, secrets.WithAuthWait(0))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	h := secrets.WrapTool(st, query(st, db))
	if _, _, err := h(ctx, struct{}{}, struct{}{}); err != nil {
		t.Fatalf("the call failed: %v", err)
	}
	if got := versionsOf(t, st, "db"); got != "new/old/" {
		t.Fatalf("serving %s, want the pending version adopted", got)
	}
	src.set("db", "old", "", "") // rolled back
	db.set("old")
	if err := st.Refresh(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, st, "db"); got != "old//" {
		t.Fatalf("serving %s after the rollback, want old", got)
	}
}
