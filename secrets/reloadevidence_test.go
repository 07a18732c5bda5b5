package secrets_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// batchOnlyCurrent is a BatchFetcher that sees what BatchGetSecretValue
// sees: the current version only. A forced request whose current version
// is the known one is answered with the value read again and the known
// previous version; a key whose known versions hold a pending one is read
// in full, as sources/awssm does. Fetch reads in full and can be held.
type batchOnlyCurrent struct {
	mu      sync.Mutex
	vals    map[string]secrets.Versions
	gate    chan struct{}
	entered chan string
}

func (s *batchOnlyCurrent) set(key string, v secrets.Versions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key] = v
}

func (s *batchOnlyCurrent) read(key string) secrets.Versions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[key]
}

func (s *batchOnlyCurrent) holdFetch() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.gate = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *batchOnlyCurrent) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	v := s.read(key) // the backend as it was when the fetch began
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.entered <- key
		select {
		case <-gate:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
	}
	return v, nil
}

func (s *batchOnlyCurrent) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	out := make([]secrets.Result, len(reqs))
	for i, q := range reqs {
		v := s.read(q.Key)
		switch {
		case !q.Known.Pending.IsZero():
			out[i].Versions = v
		case q.Forced && q.Known.Current.Version() == v.Current.Version():
			out[i].Versions = secrets.Versions{Current: v.Current, Previous: q.Known.Previous}
		case !q.Forced && q.Known.Current.Version() == v.Current.Version():
			out[i].Unchanged = true
		default:
			out[i].Versions = v
		}
	}
	return out
}

// TestReloadKeepsAuthEvidence: a call fails authentication with the
// served password while a rotation has staged a new one, which the
// database already takes. The refresh the failure forces reads the pending
// version; a reload applied while that read is in flight, whose batch
// cannot see pending versions, must not count as evidence that no rotation
// is in progress: the refresh adopts the pending version and the call's
// retry succeeds.
func TestReloadKeepsAuthEvidence(t *testing.T) {
	src := &batchOnlyCurrent{vals: map[string]secrets.Versions{}, entered: make(chan string, 8)}
	src.set("db", secrets.Versions{Current: secrets.NewSecretString("db", "v1", "old")})
	src.set("api", secrets.Versions{Current: secrets.NewSecretString("api", "t1", "tok")})
	db := &database{password: "old"}
	st, _ := adoptStore(t, src, secrets.WithAuthWait(0), secrets.WithBackoff(time.Minute, time.Hour))
	ctx := adoptCtx(t)
	for _, k := range []string{"db", "api"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// createSecret and setSecret: a new password staged, and taken.
	src.set("db", secrets.Versions{
		Current: secrets.NewSecretString("db", "v1", "old"),
		Pending: secrets.NewSecretString("db", "v2", "new"),
	})
	db.set("new")

	release := src.holdFetch()
	defer release()
	done := make(chan error, 1)
	go func() { done <- secrets.Call(ctx, st, loginWith(st, db)) }()
	<-src.entered // the forced refresh has read the backend
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the call failed (%v; logins %s): the reload set aside the evidence against the served password", err, db.tried())
	}
}

// loginWith is a call that logs in to db with the password st serves.
func loginWith(st *secrets.Store, db *database) func(context.Context) error {
	return func(ctx context.Context) error {
		pw, err := secrets.ViewFrom(ctx, st).Get(ctx, "db")
		if err != nil {
			return err
		}
		return db.login(pw.Reveal())
	}
}
