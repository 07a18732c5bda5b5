// Package memory is an in-process secrets.Source: for tests, examples and as
// the embedded default of a program that has no backend configured yet.
//
// Values are set with Set and removed with Delete. Each Set gives the key a
// new version id and keeps the version it replaces as the previous one, so
// rotation can be exercised without a backend:
//
//	src := memory.New()
//	src.Set("db-password", "first")
//	src.Set("db-password", "second") // current "second", previous "first"
//
// A Source is safe for concurrent use. Besides Fetch it implements
// secrets.ChangeDetector, answering from memory whether a key moved, and the
// write side of rotation (secrets.Stager, secrets.RotationRecorder,
// secrets.PreviousRemover), so a rotation agent can run against it in tests
// and examples.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Source holds secrets in memory. The zero value is not usable: call New.
type Source struct {
	mu   sync.RWMutex
	keys map[string]*item
	recs map[string]secrets.Rotation // rotation records, by key
	seq  uint64                      // version ids are unique across keys and deletions
}

type item struct {
	cur, prev, pend secrets.Secret
}

// New returns an empty Source.
func New() *Source {
	return &Source{keys: map[string]*item{}}
}

// Set stores value as the current version of key, under a new version id.
// The version it replaces becomes the previous one. A pending version is
// left in place, as an operator's write beside a rotation would leave it.
func (s *Source) Set(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	next := secrets.NewSecretString(key, strconv.FormatUint(s.seq, 10), value)
	it := s.keys[key]
	if it == nil {
		s.keys[key] = &item{cur: next}
		return
	}
	it.prev, it.cur = it.cur, next
}

// Delete removes key and its versions. Fetching it afterwards fails with
// secrets.ErrNotFound.
func (s *Source) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// Fetch returns the current and previous versions of key, and the pending
// one while a rotation has staged one.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Versions{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := s.keys[key]
	if it == nil {
		return secrets.Versions{}, fmt.Errorf("memory: key %s: %w", keyquote.Quote(key), secrets.ErrNotFound)
	}
	// Secrets are immutable, so handing out the stored ones shares nothing
	// a caller could change.
	return secrets.Versions{Current: it.cur, Previous: it.prev, Pending: it.pend}, nil
}

// FetchIfChanged answers Unchanged when the versions held in req.Known are
// still the current ones, and fetches otherwise.
func (s *Source) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	if err := ctx.Err(); err != nil {
		return secrets.Result{Err: err}
	}
	s.mu.RLock()
	it := s.keys[req.Key]
	same := it != nil && it.cur.Version() == req.Known.Current.Version() && it.prev.Version() == req.Known.Previous.Version() &&
		it.pend.Version() == req.Known.Pending.Version()
	s.mu.RUnlock()
	if same {
		return secrets.Result{Unchanged: true}
	}
	v, err := s.Fetch(ctx, req.Key)
	return secrets.Result{Versions: v, Err: err}
}
