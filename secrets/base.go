package secrets

import (
	"fmt"
	"time"
)

// baseState is the writers' record of one whole value at a source. The
// Store's keys that select fields of it share it. Guarded by Store.mu.
type baseState struct {
	key     string // the reference without a field
	ref     Ref    // its parts; Field is empty
	src     Source
	srcName string
	keys    map[string]string // keys served from this value → their field ("" for the whole)

	loaded    bool
	versions  Versions // as the source returned them, or with its pending version adopted (see adoptable)
	parsed    *parsedVersions
	fetchedAt time.Time
	lastErr   error  // the cause of the last failure, nil after a success
	lastOp    string // what failed: "fetch", "validate" or "field"
	lastErrAt time.Time
	failures  int
	next      time.Time // next background refresh (loaded) or retry (not loaded)

	// A job's verdict on a candidate holds only while the value it was
	// reached against and the keys it checked are still those of the base:
	// gen counts the swaps of versions, keysGen the keys added to a loaded
	// value. Apply compares them with the job's.
	gen     uint64
	keysGen uint64

	// Fetches are ordered by their spans on the Store's tick counter (see
	// job): okStart and okDone are the span of the fetch whose value is
	// served, failDone the end of the latest failed fetch recorded, and
	// noticeAt the tick of the latest change notice.
	okStart  uint64
	okDone   uint64
	failDone uint64
	noticeAt uint64
	busy     bool // a background refresh is in flight

	// okPartial says that the fetch of span okStart–okDone read the
	// current version only (see job.partial): the previous and pending
	// versions served were read by an earlier one.
	okPartial bool

	lastForced time.Time     // when an authentication failure last forced a refresh
	forcing    chan struct{} // closed when the forced refresh under way ends
	// authFailed holds the versions reported to fail authentication while
	// served, since the source last reported no pending version: the
	// evidence on which a pending version is adopted (see adoptable).
	authFailed map[string]bool
}

// newJob starts a fetch of b at tick start. With conditional set, the
// request carries what the Store holds so that a source may answer
// Unchanged. s.mu must be held.
func (b *baseState) newJob(start uint64, conditional bool) *job {
	j := &job{b: b, start: start, gen: b.gen, req: Request{Key: b.ref.Path}}
	if conditional && b.loaded {
		j.req.Known = b.versions
	}
	return j
}

// addKey starts serving key, which selects field, from b.
func (b *baseState) addKey(key, field string) {
	b.keys[key] = field
	if b.loaded {
		b.keysGen++
	}
}

// setVersions swaps in new versions.
func (b *baseState) setVersions(v Versions) {
	b.versions = v
	b.parsed = nil
	b.gen++
}

// fields returns b's versions parsed for field selection, parsing them at
// most once per change.
func (b *baseState) fields() *parsedVersions {
	if b.parsed == nil {
		b.parsed = parseVersions(b.versions)
	}
	return b.parsed
}

// derive builds the entry for key from b.
func (b *baseState) derive(key, field string) *entry {
	if !b.loaded {
		err := b.lastErr
		if err == nil {
			err = ErrTransient
		}
		return &entry{err: &Error{Op: b.op(), Key: key, Err: err}, retryAt: b.next}
	}
	return deriveEntry(b.fields(), key, field, b.srcName, b.fetchedAt, b.lastErr)
}

// deriveEntry builds the entry for key, which selects field, from a value's
// parsed versions.
func deriveEntry(p *parsedVersions, key, field, srcName string, fetchedAt time.Time, lastErr error) *entry {
	v, err := p.field(field)
	if err != nil {
		return &entry{err: &Error{Op: "field", Key: key, Err: err}}
	}
	v.Current = v.Current.with(key, srcName, fetchedAt)
	v.Previous = v.Previous.with(key, srcName, fetchedAt)
	v.Pending = v.Pending.with(key, srcName, fetchedAt)
	return &entry{versions: v, whole: p.v, fetchedAt: fetchedAt, lastErr: lastErr}
}

// op returns the operation the last failure happened in.
func (b *baseState) op() string {
	if b.lastOp == "" {
		return "fetch"
	}
	return b.lastOp
}

// expedite brings b's next refresh forward after a change was signalled: to
// now when b is healthy, and to no later than one minimum backoff from now
// while it is failing, so that a burst of signals after a rejected candidate
// costs one attempt, not one per signal.
func (b *baseState) expedite(now time.Time, minBackoff time.Duration) {
	if b.failures == 0 {
		b.next = now
		return
	}
	if soon := now.Add(minBackoff); soon.Before(b.next) {
		b.next = soon
	}
}

// parsedVersions is a value's pair of versions, parsed once for the
// selection of any number of fields: the first field selected parses each
// version, the others reuse the parse.
type parsedVersions struct {
	v               Versions
	parsed          bool
	cur, prev, pend *jsonDoc
	curErr          error
}

func parseVersions(v Versions) *parsedVersions {
	return &parsedVersions{v: v}
}

// field selects field from each version ("" selects the whole value). A
// previous or pending version that lacks the field, or holds it empty, is
// dropped. An
// empty selection fails with ErrInvalid: the Store serves no empty value.
// Not safe for concurrent use.
func (p *parsedVersions) field(field string) (Versions, error) {
	if field == "" {
		return p.v, nil
	}
	if !p.parsed {
		p.parsed = true
		p.cur, p.curErr = parseDoc(p.v.Current.Reveal())
		if !p.v.Previous.IsZero() {
			p.prev, _ = parseDoc(p.v.Previous.Reveal())
		}
		if !p.v.Pending.IsZero() {
			p.pend, _ = parseDoc(p.v.Pending.Reveal())
		}
	}
	if p.curErr != nil {
		return Versions{}, p.curErr
	}
	cur, err := p.cur.field(field)
	if err != nil {
		return Versions{}, err
	}
	if cur == "" {
		return Versions{}, fmt.Errorf("%w: field %s is empty", ErrInvalid, quote(field))
	}
	out := Versions{Current: withValue(p.v.Current, cur)}
	if p.prev != nil {
		if prev, err := p.prev.field(field); err == nil && prev != "" {
			out.Previous = withValue(p.v.Previous, prev)
		}
	}
	if p.pend != nil {
		if pend, err := p.pend.field(field); err == nil && pend != "" {
			out.Pending = withValue(p.v.Pending, pend)
		}
	}
	return out, nil
}

// withValue returns s with another value and the same metadata.
func withValue(s Secret, value string) Secret {
	return NewSecretString(s.Key(), s.Version(), value).with(s.Key(), s.Source(), s.FetchedAt())
}
