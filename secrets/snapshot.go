package secrets

import (
	"hash/maphash"
	"math/bits"
	"time"
)

// A snapshot is what readers see: the entry of every key the Store serves,
// in a persistent hash map. A snapshot is never modified once published; a
// writer makes the next one by copying only the path from the root to the
// keys it changes (a hash array mapped trie, in the compressed CHAMP layout),
// so publishing k keys costs O(k·log₃₂ n) whatever the number n of keys
// served, while a reader's lookup is a hash and a walk of a few nodes with no
// lock and no allocation. A View holds one snapshot: every key in it reads as
// it was at that moment.
//
// Off the write path, the Store's flattener then replaces the newest
// snapshot with an equal one that also holds its entries in a Go map, whose
// lookup is the cheapest a read can be. Writers never wait for it: a
// snapshot published meanwhile simply has no map until the flattener comes
// round again.
type snapshot struct {
	flat map[string]*entry // nil, or the same entries as the trie
	root *pnode
	n    int
}

// entry is the immutable answer for one key as callers name it.
type entry struct {
	versions  Versions
	whole     Versions // the value versions was selected from, as the source returned it
	fetchedAt time.Time
	err       error     // non-nil: nothing to serve; versions are zero
	retryAt   time.Time // with err: when Get may ask the source again; zero: not before the value changes
	lastErr   error     // the last refresh failure, for ErrStale
}

// pnode is a node of the trie. datamap marks the slots of the 32 that hold a
// leaf, nodemap those that hold a child; leaves and nodes are stored densely
// in slot order. A node below the last level of hash bits holds colliding
// keys in leaves alone, searched in order.
type pnode struct {
	datamap uint32
	nodemap uint32
	leaves  []pleaf
	nodes   []*pnode
}

type pleaf struct {
	key string
	h   uint64
	e   *entry
}

const (
	pbits   = 5
	pmask   = 1<<pbits - 1
	maxBits = 64 // the width of the hash: from this shift on, nodes hold collisions
)

// hashSeed is the process's seed for key hashes.
var hashSeed = maphash.MakeSeed()

func hashKey(key string) uint64 { return maphash.String(hashSeed, key) }

// get returns key's entry, or nil. It is the read path of every Get: a map
// lookup once the snapshot is flat, and until then one hash and a walk of a
// few nodes, comparing a leaf's full hash before its key.
func (s *snapshot) get(key string) *entry {
	if s.flat != nil {
		return s.flat[key]
	}
	return s.getHashed(key, hashKey(key))
}

func (s *snapshot) getHashed(key string, h uint64) *entry {
	n := s.root
	if n == nil {
		return nil
	}
	for shift := uint(0); shift < maxBits; shift += pbits {
		bit := uint32(1) << (h >> shift & pmask)
		if n.datamap&bit != 0 {
			l := &n.leaves[bits.OnesCount32(n.datamap&(bit-1))]
			if l.h == h && l.key == key {
				return l.e
			}
			return nil
		}
		if n.nodemap&bit == 0 {
			return nil
		}
		n = n.nodes[bits.OnesCount32(n.nodemap&(bit-1))]
	}
	for i := range n.leaves {
		if n.leaves[i].key == key {
			return n.leaves[i].e
		}
	}
	return nil
}

// len returns the number of keys.
func (s *snapshot) len() int { return s.n }

// each calls fn for every key and its entry, in no particular order.
func (s *snapshot) each(fn func(key string, e *entry)) {
	var walk func(n *pnode)
	walk = func(n *pnode) {
		for _, l := range n.leaves {
			fn(l.key, l.e)
		}
		for _, c := range n.nodes {
			walk(c)
		}
	}
	if s.root != nil {
		walk(s.root)
	}
}

// A snapshotBuilder makes the next snapshot from one. Nodes it has copied
// already are changed in place, so a batch of changes copies each node of
// the trie at most once.
type snapshotBuilder struct {
	root  *pnode
	n     int
	owned map[*pnode]bool // nodes made by this builder, not yet published
}

func (s *snapshot) builder() *snapshotBuilder {
	return &snapshotBuilder{root: s.root, n: s.n}
}

func (b *snapshotBuilder) snapshot() *snapshot {
	b.owned = nil // published: from now on, immutable
	return &snapshot{root: b.root, n: b.n}
}

// own returns n itself if the builder made it, or a copy the builder owns.
func (b *snapshotBuilder) own(n *pnode) *pnode {
	if n != nil && b.owned[n] {
		return n
	}
	c := &pnode{}
	if n != nil {
		c.datamap, c.nodemap = n.datamap, n.nodemap
		c.leaves = append([]pleaf(nil), n.leaves...)
		c.nodes = append([]*pnode(nil), n.nodes...)
	}
	if b.owned == nil {
		b.owned = map[*pnode]bool{}
	}
	b.owned[c] = true
	return c
}

// set makes key's entry e.
func (b *snapshotBuilder) set(key string, e *entry) { b.setHashed(key, hashKey(key), e) }

func (b *snapshotBuilder) setHashed(key string, h uint64, e *entry) {
	if b.setIn(&b.root, key, h, e, 0) {
		b.n++
	}
}

// setIn sets key in the subtrie at *np, replacing *np with a node the
// builder owns. It reports whether the key is new.
func (b *snapshotBuilder) setIn(np **pnode, key string, h uint64, e *entry, shift uint) bool {
	n := b.own(*np)
	*np = n
	if shift >= maxBits {
		for i := range n.leaves {
			if n.leaves[i].key == key {
				n.leaves[i].e = e
				return false
			}
		}
		n.leaves = append(n.leaves, pleaf{key, h, e})
		return true
	}
	bit := uint32(1) << (h >> shift & pmask)
	switch {
	case n.datamap&bit != 0:
		i := bits.OnesCount32(n.datamap & (bit - 1))
		old := n.leaves[i]
		if old.key == key {
			n.leaves[i].e = e
			return false
		}
		// Two keys share this slot: push both one level down.
		var child *pnode
		b.setIn(&child, old.key, old.h, old.e, shift+pbits)
		b.setIn(&child, key, h, e, shift+pbits)
		n.leaves = append(n.leaves[:i], n.leaves[i+1:]...)
		n.datamap &^= bit
		j := bits.OnesCount32(n.nodemap & (bit - 1))
		n.nodes = append(n.nodes, nil)
		copy(n.nodes[j+1:], n.nodes[j:])
		n.nodes[j] = child
		n.nodemap |= bit
		return true
	case n.nodemap&bit != 0:
		j := bits.OnesCount32(n.nodemap & (bit - 1))
		return b.setIn(&n.nodes[j], key, h, e, shift+pbits)
	default:
		i := bits.OnesCount32(n.datamap & (bit - 1))
		n.leaves = append(n.leaves, pleaf{})
		copy(n.leaves[i+1:], n.leaves[i:])
		n.leaves[i] = pleaf{key, h, e}
		n.datamap |= bit
		return true
	}
}

// delete removes key, if present.
func (b *snapshotBuilder) delete(key string) { b.deleteHashed(key, hashKey(key)) }

func (b *snapshotBuilder) deleteHashed(key string, h uint64) {
	if b.root == nil {
		return
	}
	if b.deleteIn(&b.root, key, h, 0) {
		b.n--
	}
}

// deleteIn removes key from the subtrie at *np, leaving nil in place of a
// node that becomes empty. It reports whether the key was there.
func (b *snapshotBuilder) deleteIn(np **pnode, key string, h uint64, shift uint) bool {
	n := *np
	if shift >= maxBits {
		for i := range n.leaves {
			if n.leaves[i].key == key {
				n = b.own(n)
				n.leaves = append(n.leaves[:i], n.leaves[i+1:]...)
				*np = n
				if len(n.leaves) == 0 {
					*np = nil
				}
				return true
			}
		}
		return false
	}
	bit := uint32(1) << (h >> shift & pmask)
	switch {
	case n.datamap&bit != 0:
		i := bits.OnesCount32(n.datamap & (bit - 1))
		if n.leaves[i].key != key {
			return false
		}
		n = b.own(n)
		n.leaves = append(n.leaves[:i], n.leaves[i+1:]...)
		n.datamap &^= bit
	case n.nodemap&bit != 0:
		j := bits.OnesCount32(n.nodemap & (bit - 1))
		child := n.nodes[j]
		if !b.deleteIn(&child, key, h, shift+pbits) {
			return false
		}
		n = b.own(n)
		if child == nil {
			n.nodes = append(n.nodes[:j], n.nodes[j+1:]...)
			n.nodemap &^= bit
		} else {
			n.nodes[j] = child
		}
	default:
		return false
	}
	*np = n
	if n.datamap == 0 && n.nodemap == 0 && len(n.leaves) == 0 {
		*np = nil
	}
	return true
}

// publish makes snap the snapshot readers see. s.mu must be held.
func (s *Store) publish(snap *snapshot) {
	s.snap.Store(snap)
	if s.published != nil {
		close(s.published)
		s.published = nil
	}
	select {
	case s.flatten <- struct{}{}:
	default:
	}
}

// flattener is the Store's goroutine that gives the newest snapshot its Go
// map. Each pass costs O(n); passes coalesce, so a burst of publishes costs
// a few of them, each on a snapshot that is already out of date only if a
// publish came meanwhile. It swaps in the flat snapshot only if no writer
// has published since it began (a compare-and-swap, without the lock).
func (s *Store) flattener() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.flatten:
		}
		old := s.snap.Load()
		if old.flat != nil {
			continue
		}
		m := make(map[string]*entry, old.n)
		old.each(func(k string, e *entry) { m[k] = e })
		s.snap.CompareAndSwap(old, &snapshot{flat: m, root: old.root, n: old.n})
	}
}
