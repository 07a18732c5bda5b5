package secrets

import (
	"fmt"
	"sort"
)

// A key's life in a Store: it is known from its first Get (or from New, for
// the keys named by WithRequired) until Forget. While known, it is polled
// every TTL once loaded, and retried with backoff while its first load
// fails, whether or not anyone reads it meanwhile.

// WithRequired names the keys the Store must serve: New starts loading them
// in the background at once (a Get waits for that load, or makes it), and
// Health checks these keys and no others, so that a key read only now and
// then (a feature's optional credential) cannot fail a readiness probe.
// Without WithRequired, Health checks every key the Store knows. A key that
// cannot be routed (a malformed reference, an unregistered scheme) makes New
// fail.
func WithRequired(keys ...string) Option {
	return func(c *config) error {
		if c.required == nil {
			c.required = []string{}
		}
		c.required = append(c.required, keys...)
		return nil
	}
}

// require registers the required keys and schedules their first load.
func (s *Store) require(keys []string) error {
	if keys == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.required = make(map[string]bool, len(keys))
	now := s.clock.Now()
	var bs []*baseState
	for _, key := range keys {
		t, err := s.resolve(key)
		if err != nil {
			return fmt.Errorf("secrets: WithRequired(%s): %w", quote(key), err)
		}
		b := s.baseLocked(t)
		b.addKey(key, t.ref.Field)
		b.next = now
		s.required[key] = true
		bs = append(bs, b)
	}
	s.publishLocked(bs...)
	return nil
}

// Forget stops serving key: it leaves the snapshot, Status, Statuses and
// Health, and once no key is served from its value, that value is no longer
// polled or retried. Forget of a key the Store does not know does nothing.
// A View made earlier still holds the key; a later Get loads it afresh.
func (s *Store) Forget(key string) {
	ref, err := ParseRef(key)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.required, key)
	b := s.bases[ref.base()]
	if b == nil {
		return
	}
	if _, ok := b.keys[key]; !ok {
		return
	}
	delete(b.keys, key)
	if len(b.keys) == 0 {
		delete(s.bases, b.key)
	}
	sb := s.snap.Load().builder()
	sb.delete(key)
	s.publish(sb.snapshot())
}

// healthKeys returns the keys Health checks, sorted.
func (s *Store) healthKeys(snap *snapshot) []string {
	var keys []string
	s.mu.Lock()
	if s.required != nil {
		keys = make([]string, 0, len(s.required))
		for k := range s.required {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	if keys == nil {
		keys = make([]string, 0, snap.len())
		snap.each(func(k string, _ *entry) { keys = append(keys, k) })
	}
	sort.Strings(keys)
	return keys
}

// keysOf returns the keys the Store serves from the value base.
func (s *Store) keysOf(base string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bases[base]
	if b == nil {
		return nil
	}
	keys := make([]string, 0, len(b.keys))
	for k := range b.keys {
		keys = append(keys, k)
	}
	return keys
}
