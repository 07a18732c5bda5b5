// Package kvsource is a rotor Source written outside rotor's module, as a
// third party would write one for its own secret store: here a small
// versioned key-value service (Service), standing in for a vendor's client.
// Its test runs rotor's public conformance suite (secrets/sourcetest), which
// is how a source shows that it keeps the contract.
package kvsource

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/rotorhq/rotor/secrets"
)

// Service is a versioned key-value store: each Put makes a new version of a
// key, numbered from 1, and the versions of a key are kept until Delete.
// It stands in for the remote service a real source would call.
type Service struct {
	mu   sync.Mutex
	data map[string][]string // key → values, oldest first
}

// NewService returns an empty Service.
func NewService() *Service { return &Service{data: map[string][]string{}} }

// Put stores value as the new version of key.
func (s *Service) Put(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = append(s.data[key], value)
}

// Delete removes key and all its versions.
func (s *Service) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, key)
}

// versions returns the latest two versions of key, numbered, and whether
// the key exists.
func (s *Service) versions(key string) (cur, prev string, n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.data[key]
	if len(vs) == 0 {
		return "", "", 0, false
	}
	n = len(vs)
	if n > 1 {
		prev = vs[n-2]
	}
	return vs[n-1], prev, n, true
}

// Source reads secrets from a Service.
type Source struct{ svc *Service }

// New returns a Source over svc.
func New(svc *Service) *Source { return &Source{svc: svc} }

// Fetch returns the latest version of key as current and the one before it
// as previous. A key the service does not hold fails with secrets.ErrNotFound;
// the error names the key, never a value.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Versions{}, fmt.Errorf("kvsource: fetch %q: %w", key, err)
	}
	cur, prev, n, ok := s.svc.versions(key)
	if !ok {
		return secrets.Versions{}, fmt.Errorf("kvsource: fetch %q: %w", key, secrets.ErrNotFound)
	}
	v := secrets.Versions{Current: secrets.NewSecretString(key, strconv.Itoa(n), cur)}
	if n > 1 {
		v.Previous = secrets.NewSecretString(key, strconv.Itoa(n-1), prev)
	}
	return v, nil
}
