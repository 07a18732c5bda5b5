package vault

import (
	"strconv"
	"time"
)

// The keys of a KV v2 secret's custom metadata through which a rotation
// names its versions (see "Rotation" in the package documentation). Their
// values are KV version numbers in decimal.
const (
	// MarkCurrent names the version served as current while newer
	// versions exist that are not (yet) current: a pending one, or ones a
	// rotation discarded. Written by Stage (the version staged over) and
	// by Promote (the version promoted).
	MarkCurrent = "rotor-current"
	// MarkPending names the version a rotation staged, until Promote or
	// Discard.
	MarkPending = "rotor-pending"
	// MarkRetired names the newest version that RemovePrevious retired:
	// it and every version before it are never served as previous.
	MarkRetired = "rotor-retired"
)

// marks are a key's rotation marks, 0 where absent or malformed.
type marks struct {
	current, pending, retired int
}

func parseMarks(custom map[string]string) marks {
	num := func(k string) int {
		n, err := strconv.Atoi(custom[k])
		if err != nil || n < 1 {
			return 0
		}
		return n
	}
	return marks{current: num(MarkCurrent), pending: num(MarkPending), retired: num(MarkRetired)}
}

// view is what a KV v2 key's metadata says Fetch serves: which version is
// current, which is pending, and which may be previous. It is computed from
// the metadata alone, so a poll needs no other request to tell whether
// anything changed.
type view struct {
	latest  int   // current_version: the newest version written
	current int   // the version served as current
	pending int   // the version staged, live; 0 for none
	pinned  bool  // the marks decide current (a rotation's versions above it)
	prev    []int // candidates for previous, newest first
	// missing is why there is no current version ("" when there is one):
	// nothing written, or the version that would be current is deleted or
	// destroyed. Fetch answers it with secrets.ErrNotFound.
	missing string
}

// live reports whether version n exists and is neither deleted (by now)
// nor destroyed. A version that the metadata does not list (pruned by
// max_versions) is not live.
func (m kvMetadata) liveVersion(n int, now time.Time) bool {
	st, ok := m.versions[n]
	return ok && !st.destroyed && !st.deleted(now)
}

// viewOf applies the rule of the package documentation ("Rotation"):
//
//   - Without marks, the latest version is current: plain KV v2.
//   - With MarkCurrent naming a version c, c is current as long as every
//     live version above it is the one MarkPending names: the versions a
//     rotation staged or discarded. That version, while live, is pending.
//     A pending version is never current without a Promote: when c itself
//     is deleted, destroyed or pruned, the key has no current version.
//   - Any other live version above c (a write that is not a rotation's)
//     voids the marks: the latest version is current again, as without
//     them.
//
// Previous is the newest live version below current that is neither the
// marked pending version nor retired (MarkRetired or older).
func (m kvMetadata) viewOf(now time.Time) view {
	v := view{latest: m.current}
	if m.current <= 0 {
		v.missing = "no version written"
		return v
	}
	mk := parseMarks(m.custom)
	if c := mk.current; c > 0 && c <= m.current {
		v.pinned = true
		for n := c + 1; n <= m.current; n++ {
			if n != mk.pending && m.liveVersion(n, now) {
				v.pinned = false
				break
			}
		}
	}
	if v.pinned {
		v.current = mk.current
		if st, ok := m.versions[v.current]; !ok || st.destroyed || st.deleted(now) {
			// Deleted by hand, or pruned by max_versions: the pending
			// version is still not current without a Promote.
			v.missing = "version " + strconv.Itoa(v.current) + ", the current one, is deleted, destroyed or pruned (max_versions)"
		}
		if p := mk.pending; p > v.current && p <= m.current && m.liveVersion(p, now) {
			v.pending = p
		}
	} else {
		v.current = m.current
		if st, ok := m.versions[v.current]; ok {
			switch {
			case st.destroyed:
				v.missing = "latest version " + strconv.Itoa(v.current) + " is destroyed"
			case st.deleted(now):
				v.missing = "latest version " + strconv.Itoa(v.current) + " is deleted"
			}
		}
	}
	for _, n := range m.live(v.current, now) {
		if n == mk.pending || n <= mk.retired {
			continue
		}
		v.prev = append(v.prev, n)
	}
	return v
}

// ids returns the version ids of current, previous (its first candidate)
// and pending, "" for none.
func (v view) ids() (cur, prev, pend string) {
	cur = strconv.Itoa(v.current)
	if len(v.prev) > 0 {
		prev = strconv.Itoa(v.prev[0])
	}
	if v.pending > 0 {
		pend = strconv.Itoa(v.pending)
	}
	return cur, prev, pend
}
