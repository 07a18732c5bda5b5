package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/fakeclock"
)

// fakeDB is a Vault that answers just what the database keys need: token
// lookup, dynamic and static credentials, and lease lookup and renewal.
// Tokens can be revoked, with the leases they read.
type fakeDB struct {
	t  *testing.T
	mu sync.Mutex

	leaseDuration int64 // of each new pair
	renewDuration int64 // granted by a renewal
	staticTTL     any   // the ttl a static role reports
	tokens        map[string]bool
	leases        map[string]string // lease id → token that read it
	reads         map[string]int    // path → credentials read
	logins        int
	tokenTTL      map[string]int    // token → the ttl lookup-self reports (0 by default)
	rejectOn      map[string]string // path → a token refused there as invalid, though valid elsewhere
	denyOn        map[string]string // path → a token whose policy does not allow it there
}

func newFakeDB(t *testing.T) (*fakeDB, *httptest.Server) {
	f := &fakeDB{t: t, leaseDuration: 60, renewDuration: 60, staticTTL: 3600,
		tokens: map[string]bool{}, leases: map[string]string{}, reads: map[string]int{},
		tokenTTL: map[string]int{}, rejectOn: map[string]string{}, denyOn: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeDB) reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (f *fakeDB) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := r.Header.Get("X-Vault-Token")
	if !f.tokens[tok] || f.rejectOn[strings.TrimPrefix(r.URL.Path, "/v1/")] == tok {
		f.reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied", "invalid token"}})
		return
	}
	if f.denyOn[strings.TrimPrefix(r.URL.Path, "/v1/")] == tok {
		f.reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	var body struct {
		LeaseID string `json:"lease_id"`
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		json.NewDecoder(r.Body).Decode(&body)
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case p == "auth/token/lookup-self":
		f.reply(w, 200, map[string]any{"data": map[string]any{"ttl": f.tokenTTL[tok], "renewable": false}})
	case strings.HasPrefix(p, "database/creds/"):
		f.reads[p]++
		id := fmt.Sprintf("%s/%d", p, f.reads[p])
		f.leases[id] = tok
		f.reply(w, 200, map[string]any{"lease_id": id, "lease_duration": f.leaseDuration, "renewable": true,
			"data": map[string]any{"username": fmt.Sprintf("v-%s-%d", p, f.reads[p]), "password": fmt.Sprintf("pw-%d", f.reads[p])}})
	case strings.HasPrefix(p, "database/static-creds/"):
		f.reads[p]++
		f.reply(w, 200, map[string]any{"data": map[string]any{"username": "app", "password": "pw-static",
			"ttl": f.staticTTL, "last_vault_rotation": "2026-12-02T18:00:00Z"}})
	case p == "sys/leases/lookup":
		if _, ok := f.leases[body.LeaseID]; !ok {
			f.reply(w, 400, map[string]any{"errors": []string{"invalid lease"}})
			return
		}
		f.reply(w, 200, map[string]any{"data": map[string]any{"id": body.LeaseID, "ttl": 30}})
	case p == "sys/leases/revoke":
		delete(f.leases, body.LeaseID)
		f.reply(w, 204, nil)
	case p == "sys/leases/renew":
		if _, ok := f.leases[body.LeaseID]; !ok {
			f.reply(w, 400, map[string]any{"errors": []string{"lease not found"}})
			return
		}
		f.reply(w, 200, map[string]any{"lease_id": body.LeaseID, "lease_duration": f.renewDuration, "renewable": true})
	default:
		f.reply(w, 404, map[string]any{"errors": []string{}})
	}
}

// revokeToken revokes tok and, as Vault does, every lease it read.
func (f *fakeDB) revokeToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, tok)
	for id, by := range f.leases {
		if by == tok {
			delete(f.leases, id)
		}
	}
}

func (f *fakeDB) readsOf(p string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[p]
}

// Login implements api.AuthMethod: each login is a new token.
func (f *fakeDB) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	tok := fmt.Sprintf("t%d", f.logins)
	f.tokens[tok] = true
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: tok}}, nil
}

// A lease whose duration does not fit a time.Duration in nanoseconds is
// held, not treated as ended: no new pair on the next fetch.
func TestDatabaseHugeLeaseDuration(t *testing.T) {
	f, srv := newFakeDB(t)
	f.leaseDuration = 10_000_000_000 // seconds: about 317 years
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	v1, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v1.RefreshBy.After(time.Now().Add(time.Hour)) {
		t.Errorf("RefreshBy %s, want far in the future", v1.RefreshBy)
	}
	v2, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Current.Version() != v1.Current.Version() || f.readsOf("database/creds/app") != 1 {
		t.Errorf("a new pair was read: %d reads", f.readsOf("database/creds/app"))
	}
}

// A renewal granting a duration that overflows keeps the lease too.
func TestDatabaseHugeRenewal(t *testing.T) {
	f, srv := newFakeDB(t)
	f.leaseDuration = 1
	f.renewDuration = 10_000_000_000
	clk := fakeclock.New(time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC))
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	v1, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(v1.RefreshBy.Sub(clk.Now())) // due: renewed
	v2, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v2.RefreshBy.After(clk.Now().Add(time.Hour)) {
		t.Errorf("RefreshBy %s after renewal at %s, want far in the future", v2.RefreshBy, clk.Now())
	}
	if _, err := s.Fetch(ctx, "database/creds/app"); err != nil {
		t.Fatal(err)
	}
	if n := f.readsOf("database/creds/app"); n != 1 {
		t.Errorf("%d pairs read, want 1", n)
	}
}

// A static role announcing a rotation further away than a time.Duration
// holds is read again at the Store's TTL, not every two seconds.
func TestDatabaseHugeStaticTTL(t *testing.T) {
	f, srv := newFakeDB(t)
	f.staticTTL = 1e10
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Fetch(context.Background(), "database/static-creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v.RefreshBy.After(time.Now().Add(time.Hour)) {
		t.Errorf("RefreshBy %s, want far in the future", v.RefreshBy)
	}
}

// A pair whose token was revoked (and its leases with it) is not served as
// previous once a new login replaced the token.
func TestDatabaseRevokedTokenPairNotPrevious(t *testing.T) {
	f, srv := newFakeDB(t)
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Fetch(ctx, "database/creds/app"); err != nil {
		t.Fatal(err)
	}
	f.revokeToken("t1")
	// Another key meets the revoked token first, and logs in again.
	if _, err := s.Fetch(ctx, "database/creds/other"); err != nil {
		t.Fatal(err)
	}
	v, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Previous.IsZero() {
		t.Errorf("previous version %s served, but its lease was revoked with its token", v.Previous.Version())
	}
	if n := f.readsOf("database/creds/app"); n != 2 {
		t.Errorf("%d pairs read, want 2", n)
	}
}

// A static role whose ttl is not a number says nothing of its schedule: the
// Store's TTL governs, not a poll every two seconds.
func TestDatabaseStaticTTLWrongType(t *testing.T) {
	for _, ttl := range []any{"3600", nil, map[string]any{"s": 1}} {
		f, srv := newFakeDB(t)
		f.staticTTL = ttl
		s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Fetch(context.Background(), "database/static-creds/app")
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !v.RefreshBy.IsZero() {
			t.Errorf("ttl %#v: RefreshBy %s, want none", ttl, v.RefreshBy)
		}
	}
}
