package secrets

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSnapshotModel runs random sets and deletes against a Go map, with hash
// functions that make keys share slots at every level (down to full 64-bit
// collisions), and checks every published snapshot stays as it was.
func TestSnapshotModel(t *testing.T) {
	hashes := map[string]func(string) uint64{
		"real": hashKey,
		// Few distinct hashes: most keys collide in all 64 bits.
		"colliding": func(k string) uint64 { return hashKey(k) % 7 },
		// Equal low bits: keys share slots down to the last levels.
		"deep": func(k string) uint64 { return hashKey(k) &^ (1<<60 - 1) },
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			model := map[string]*entry{}
			snap := &snapshot{}
			type frozen struct {
				s     *snapshot
				model map[string]*entry
			}
			var history []frozen
			for step := 0; step < 4000; step++ {
				b := snap.builder()
				for range 1 + r.IntN(8) {
					k := fmt.Sprintf("k%d", r.IntN(300))
					if r.IntN(4) == 0 {
						b.deleteHashed(k, hash(k))
						delete(model, k)
					} else {
						e := &entry{}
						b.setHashed(k, hash(k), e)
						model[k] = e
					}
				}
				snap = b.snapshot()
				if step%97 == 0 {
					m := make(map[string]*entry, len(model))
					for k, v := range model {
						m[k] = v
					}
					history = append(history, frozen{snap, m})
				}
				checkSnapshot(t, snap, model, hash)
			}
			for _, f := range history {
				checkSnapshot(t, f.s, f.model, hash)
			}
		})
	}
}

func checkSnapshot(t *testing.T, s *snapshot, model map[string]*entry, hash func(string) uint64) {
	t.Helper()
	if s.len() != len(model) {
		t.Fatalf("len %d, want %d", s.len(), len(model))
	}
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("k%d", i)
		if got, want := s.getHashed(k, hash(k)), model[k]; got != want {
			t.Fatalf("get(%q) = %p, want %p", k, got, want)
		}
	}
	seen := 0
	s.each(func(k string, e *entry) {
		seen++
		if model[k] != e {
			t.Fatalf("each: %q = %p, want %p", k, e, model[k])
		}
	})
	if seen != len(model) {
		t.Fatalf("each visited %d keys, want %d", seen, len(model))
	}
}
