package secrets

import (
	"context"
	"sort"
	"sync"
)

// A View reads the Store as it was at one moment. Every key that was loaded
// when the View was made is read from that moment's snapshot, so a rotation
// in the middle of a request cannot pair an old user name with a new password,
// or a new client id with an old client secret. A key first loaded through
// the View is read once and then held by it too.
//
// A View also records the keys read through it, which is how WrapTool and
// Call know what to refresh when a request fails authentication.
//
// A View is meant for one request and is safe for concurrent use.
type View struct {
	s    *Store
	snap *snapshot

	mu    sync.Mutex
	later map[string]*entry // keys loaded after the View was made
	used  map[string]struct{}
	// waited is set when a wait for a newer credential (see WithAuthWait)
	// on this View ran out: a call that already waited does not wait
	// again, however many layers (a Transport inside WrapTool) see the
	// failure.
	waited bool
}

// View returns a View of the Store's current values.
func (s *Store) View() *View {
	return &View{s: s, snap: s.snap.Load()}
}

// Get returns key's current version as of the View. It loads, fails and
// honours the maximum staleness as Store.Get does.
func (v *View) Get(ctx context.Context, key string) (Secret, error) {
	e, err := v.entry(ctx, key)
	if err != nil {
		return Secret{}, err
	}
	return e.versions.Current, nil
}

// Versions returns key's versions as of the View.
func (v *View) Versions(ctx context.Context, key string) (Versions, error) {
	e, err := v.entry(ctx, key)
	if err != nil {
		return Versions{}, err
	}
	return e.versions, nil
}

func (v *View) entry(ctx context.Context, key string) (*entry, error) {
	v.mu.Lock()
	if v.used == nil {
		v.used = map[string]struct{}{}
	}
	v.used[key] = struct{}{}
	e := v.snap.get(key)
	if e == nil || e.err != nil {
		e = v.later[key]
	}
	v.mu.Unlock()
	if e != nil && e.err == nil {
		if v.s.closed.Load() {
			return nil, &Error{Op: "get", Key: key, Err: ErrClosed}
		}
		if v.s.cfg.maxStale > 0 {
			if age := v.s.clock.Now().Sub(e.fetchedAt); age > v.s.cfg.maxStale {
				return nil, v.s.staleError(key, age, e.lastErr)
			}
		}
		return e, nil
	}
	if e = v.sibling(key); e != nil {
		if e.err != nil {
			return nil, e.err
		}
		if v.s.cfg.maxStale > 0 {
			if age := v.s.clock.Now().Sub(e.fetchedAt); age > v.s.cfg.maxStale {
				return nil, v.s.staleError(key, age, e.lastErr)
			}
		}
	} else {
		var err error
		if e, err = v.s.entry(ctx, key); err != nil {
			return nil, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if held := v.later[key]; held != nil {
		return held, nil // another goroutine of this request got there first
	}
	if v.later == nil {
		v.later = map[string]*entry{}
	}
	v.later[key] = e
	return e, nil
}

// sibling returns key's entry as the View sees it when the View already
// holds another key of the same value: derived from that key's version of
// the value, so that a field first read in the middle of a request (the
// password, after the user name) comes from the version the request began
// with, not from one rotated in since. It returns nil when the View holds no
// key of the value.
func (v *View) sibling(key string) *entry {
	ref, err := ParseRef(key)
	if err != nil || ref.Field == "" {
		return nil
	}
	keys := v.s.keysOf(ref.base())
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range keys {
		held := v.snap.get(k)
		if l := v.later[k]; l != nil {
			held = l
		}
		if held == nil || held.err != nil || held.whole.Current.IsZero() {
			continue
		}
		return deriveEntry(parseVersions(held.whole), key, ref.Field, held.versions.Current.Source(), held.fetchedAt, held.lastErr)
	}
	return nil
}

// Keys returns the keys read through the View, sorted.
func (v *View) Keys() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.used))
	for k := range v.used {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pin makes the View hold, for each of keys it holds no value of, the value
// the Store serves now: a call that failed authentication with a credential
// read outside the View (a pool's BeforeConnect) used the version served at
// the time, and a change is counted from it.
func (v *View) pin(keys []string) {
	now := v.s.snap.Load()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range keys {
		held := v.snap.get(k)
		if l := v.later[k]; l != nil {
			held = l
		}
		if held != nil && held.err == nil {
			continue
		}
		if e := now.get(k); e != nil && e.err == nil {
			if v.later == nil {
				v.later = map[string]*entry{}
			}
			v.later[k] = e
		}
	}
}

// heldVersion returns the version id of the value key selects from, as the
// View holds it, or "" when it holds none.
func (v *View) heldVersion(key string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.snap.get(key)
	if l := v.later[key]; l != nil {
		e = l
	}
	if e == nil || e.err != nil {
		return ""
	}
	return e.whole.Current.Version()
}

// changedSince reports whether any of keys serves another version now than
// it did in the View.
func (v *View) changedSince(keys []string) bool {
	now := v.s.snap.Load()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range keys {
		old := v.snap.get(k)
		if l := v.later[k]; l != nil {
			old = l
		}
		cur := now.get(k)
		if cur == nil || cur.err != nil {
			continue // nothing to retry with
		}
		if old == nil || old.err != nil || !old.versions.Current.sameAs(cur.versions.Current) {
			return true
		}
	}
	return false
}

type viewKey struct{ s *Store }

// ContextWithView returns a copy of ctx that carries v, for ViewFrom.
func ContextWithView(ctx context.Context, v *View) context.Context {
	return context.WithValue(ctx, viewKey{v.s}, v)
}

// ViewFrom returns the View of s that ctx carries (one made by WrapTool, Call
// or ContextWithView), or a new View of s when it carries none. Code that
// reads its credentials through ViewFrom works the same inside and outside a
// wrapped call.
func ViewFrom(ctx context.Context, s *Store) *View {
	if v, ok := ctx.Value(viewKey{s}).(*View); ok {
		return v
	}
	return s.View()
}
