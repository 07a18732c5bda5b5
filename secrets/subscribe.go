package secrets

import (
	"context"
	"sort"
	"sync"
)

// A Change tells a subscriber that a key now serves another version. It holds
// version ids, never values: read the new value with Get.
type Change struct {
	Key        string
	OldVersion string
	NewVersion string
}

// A Subscription delivers the Store's changes to one subscriber.
//
// Delivery coalesces: changes that arrive while the subscriber is busy are
// merged per key (the oldest OldVersion, the newest NewVersion) and handed
// over together at the next Next or Changes. A subscriber that never reads
// holds back no one: the Store and the other subscribers do not wait for it.
type Subscription struct {
	mu      sync.Mutex
	pending map[string]Change
	ready   chan struct{} // capacity 1: a signal that pending is not empty
	done    chan struct{} // closed when the subscription ends
	ended   bool
	store   *Store
}

// Subscribe returns a new Subscription to the changes the Store applies from
// now on. Close it when done; closing the Store ends it too.
func (s *Store) Subscribe() *Subscription {
	sub := &Subscription{
		pending: map[string]Change{},
		ready:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		store:   s,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		sub.end()
		return sub
	}
	s.subs[sub] = struct{}{}
	return sub
}

// notifyLocked hands changes to every subscriber. s.mu must be held; it never
// blocks.
func (s *Store) notifyLocked(changes []Change) {
	for sub := range s.subs {
		sub.add(changes)
	}
}

func (sub *Subscription) add(changes []Change) {
	sub.mu.Lock()
	for _, c := range changes {
		if p, ok := sub.pending[c.Key]; ok {
			c.OldVersion = p.OldVersion
		}
		sub.pending[c.Key] = c
	}
	sub.mu.Unlock()
	select {
	case sub.ready <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives when changes are pending, for use in
// a select; then call Changes. It is never closed; use Done for the end.
func (sub *Subscription) Ready() <-chan struct{} { return sub.ready }

// Done returns a channel that is closed when the subscription ends.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// Changes takes the pending changes, sorted by key, without waiting. It
// returns nil when none are pending.
func (sub *Subscription) Changes() []Change {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.pending) == 0 {
		return nil
	}
	out := make([]Change, 0, len(sub.pending))
	for _, c := range sub.pending {
		out = append(out, c)
	}
	clear(sub.pending)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Next waits for changes and takes them, as Changes does. It returns ctx's
// error when ctx ends first and ErrClosed once the subscription or its Store
// is closed.
func (sub *Subscription) Next(ctx context.Context) ([]Change, error) {
	for {
		if c := sub.Changes(); c != nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sub.done:
			if c := sub.Changes(); c != nil {
				return c, nil
			}
			return nil, ErrClosed
		case <-sub.ready:
		}
	}
}

// Close ends the subscription. It is safe to call more than once and always
// returns nil.
func (sub *Subscription) Close() error {
	sub.store.mu.Lock()
	delete(sub.store.subs, sub)
	sub.store.mu.Unlock()
	sub.end()
	return nil
}

func (sub *Subscription) end() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.ended {
		sub.ended = true
		close(sub.done)
	}
}
