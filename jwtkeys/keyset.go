package jwtkeys

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

type role uint8

const (
	roleVerify role = iota
	roleSign
)

// A keyring turns a secret's versions into parsed keys, once per version.
//
// The parsed keys live in an immutable keySet behind an atomic pointer, tagged
// with the exact Secrets they were built from. A use of the keys asks the
// Store for the versions (a lock-free read of one snapshot), compares them
// with the tag (two pointer comparisons) and, when they match, uses the keys
// as they are. Only when the Store serves other Secrets does the keyring take
// its lock, and it parses again only when the values themselves changed: a
// refresh that found nothing new costs a comparison, not a parse.
//
// The ring only moves forward. A rebuild reads the Store's versions again
// while it holds the lock, and builds from that read, never from the one
// that sent it there: that read may be older than a set another caller built
// since (it was preempted between the two), and building from it would put
// the older keys back and start their grace period again. Reads made under
// the lock follow each other, so the sets are built in the order in which
// the Store served their versions, and a rotation's grace period starts once,
// when its keys are first built.
type keyring struct {
	store *secrets.Store
	name  string
	cfg   *config
	role  role

	set  atomic.Pointer[keySet]
	lock chan struct{} // capacity 1; held while a set is built and published

	// Hooks for tests, nil otherwise. afterRead is called in get after the
	// Store's versions are read, before they are compared with the set;
	// locked in rebuild once the lock is held.
	afterRead func()
	locked    func()
}

// keySet is the parsed form of one pair of versions. It is never modified
// once published; the counters of its rotation are atomics.
type keySet struct {
	// cur and prev are the Secrets the set was built from. A Secret is a
	// pointer to immutable data, so == tells whether the Store still serves
	// the very same values.
	cur, prev secrets.Secret

	current  []*key
	previous []*key
	all      []*key            // current, then previous: the order of trial for a token without kid
	byKID    map[string][]*key // current first
	signer   *key              // roleSign: the key that signs

	err     *keyError // the current key material is unusable; every use fails with it
	prevErr *keyError // the previous key material was unusable and left out
	rot     *rotation
}

// A rotation is the Verifier's record of one set of current keys: when it
// first saw them, and how the previous keys have been used since.
type rotation struct {
	fingerprint string // the current keys' kids and thumbprints
	seenAt      time.Time
	graceEnds   time.Time

	prevUses    atomic.Uint64
	lastPrevUse atomic.Int64 // Unix nanoseconds; 0 for never
}

// get returns the key set for the versions the Store serves now. The error,
// from the Store, is a *secrets.Error or the context's error; a set whose
// material is unusable is returned with its err set.
func (r *keyring) get(ctx context.Context) (*keySet, error) {
	v, err := r.store.Versions(ctx, r.name)
	if err != nil {
		return nil, err
	}
	if r.afterRead != nil {
		r.afterRead()
	}
	if ks := r.set.Load(); ks != nil && ks.cur == v.Current && ks.prev == v.Previous {
		return ks, nil
	}
	return r.rebuild(ctx)
}

// rebuild publishes and returns the key set for the versions the Store serves
// once the lock is held.
func (r *keyring) rebuild(ctx context.Context) (*keySet, error) {
	select {
	case r.lock <- struct{}{}:
	default:
		select {
		case r.lock <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() { <-r.lock }()
	if r.locked != nil {
		r.locked()
	}
	v, err := r.store.Versions(ctx, r.name)
	if err != nil {
		return nil, err
	}
	old := r.set.Load()
	if old != nil && old.cur == v.Current && old.prev == v.Previous {
		return old, nil
	}
	if old != nil && sameSecret(old.cur, v.Current) && (r.role == roleSign || sameSecret(old.prev, v.Previous)) {
		// The Store re-published the same values (a refresh that found
		// nothing new): keep the parsed keys, retag them.
		ks := *old
		ks.cur, ks.prev = v.Current, v.Previous
		r.set.Store(&ks)
		return &ks, nil
	}
	ks := r.build(v, old)
	r.set.Store(ks)
	return ks, nil
}

func sameSecret(a, b secrets.Secret) bool {
	return a.IsZero() == b.IsZero() && a.Version() == b.Version() && a.Equal(b)
}

func (r *keyring) build(v secrets.Versions, old *keySet) *keySet {
	ks := &keySet{cur: v.Current, prev: v.Previous}
	if old != nil {
		ks.rot = old.rot // kept while the current material is unusable
	}
	fail := func(ke *keyError) *keySet {
		c := *ke
		c.version = v.Current.Version()
		ks.err = &c
		return ks
	}
	if v.Current.IsZero() {
		return fail(invalidKey("the secret has no current version"))
	}
	o := parseOpts{format: r.cfg.format, algs: r.cfg.algs}
	m, err := parseMaterial(v.Current.Bytes(), o)
	if err != nil {
		return fail(asKeyError(err))
	}
	ks.current = m.current
	assignKIDs(ks.current, m.combined, v.Current.Version(), false)

	if r.role == roleSign {
		for _, k := range ks.current {
			if k.canSign {
				ks.signer = k
				break
			}
		}
		if ks.signer == nil {
			return fail(&keyError{class: ErrNoSigningKey, msg: "the current key material holds no private key"})
		}
		return ks
	}

	if m.combined {
		ks.previous = m.previous
		ks.prevErr = m.prevErr
		assignKIDs(ks.previous, true, v.Current.Version(), true)
	} else if !v.Previous.IsZero() && len(bytes.TrimSpace(v.Previous.Bytes())) > 0 {
		// An empty previous version is no key at all: golang-jwt would take
		// an empty []byte as an HMAC key that anyone can sign with.
		pm, err := parseMaterial(v.Previous.Bytes(), o)
		if err != nil {
			c := *asKeyError(err)
			c.version, c.what = v.Previous.Version(), "previous version"
			ks.prevErr = &c
		} else {
			ks.previous = pm.current // a pair in the previous version: its current keys
			assignKIDs(ks.previous, pm.combined, v.Previous.Version(), true)
		}
	}
	for _, k := range ks.current {
		k.priv = nil // a Verifier keeps only what verifies
	}
	ks.previous = dropDuplicates(ks.previous, ks.current)
	for _, k := range ks.previous {
		k.priv = nil
	}

	ks.all = append(append(make([]*key, 0, len(ks.current)+len(ks.previous)), ks.current...), ks.previous...)
	ks.byKID = make(map[string][]*key, len(ks.all))
	for _, k := range ks.all {
		if k.kid != "" {
			ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
		}
	}

	fp := fingerprint(ks.current)
	if old != nil && old.rot != nil && old.rot.fingerprint == fp {
		ks.rot = old.rot
		return ks
	}
	seen := r.cfg.clock.Now()
	if !m.rotatedAt.IsZero() && m.rotatedAt.Before(seen) {
		seen = m.rotatedAt
	}
	ks.rot = &rotation{fingerprint: fp, seenAt: seen, graceEnds: seen.Add(r.cfg.grace)}
	return ks
}

// assignKIDs gives each key its kid: the JWK's own kid; otherwise the secret
// version's id, or, for a key from a current/previous pair (where one version
// holds both keys), the key's RFC 7638 thumbprint, which stays the same when
// the key moves from current to previous.
func assignKIDs(keys []*key, combined bool, version string, previous bool) {
	for _, k := range keys {
		k.version = version
		k.previous = previous
		switch {
		case k.jwkKID != "":
			k.kid = k.jwkKID
		case combined:
			k.kid = k.thumb
		default:
			k.kid = version
		}
	}
}

// dropDuplicates removes from prev the keys that are also current (same kid,
// same key): they verify as current keys.
func dropDuplicates(prev, cur []*key) []*key {
	out := prev[:0:0]
	for _, p := range prev {
		dup := false
		for _, c := range cur {
			if c.kid == p.kid && c.thumb == p.thumb {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

func fingerprint(keys []*key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.kid)
		b.WriteByte(0)
		b.WriteString(k.thumb)
		b.WriteByte(1)
	}
	return b.String()
}
