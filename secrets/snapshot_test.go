package secrets

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
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

// TestFlattenerGivesTheNewestSnapshotItsMap: once the Store is quiet, the
// snapshot readers see holds a Go map with exactly the trie's entries; a
// publish replaces it with a snapshot without one, and the flattener comes
// round again.
func TestFlattenerGivesTheNewestSnapshotItsMap(t *testing.T) {
	src := &mapSource{m: map[string]string{}}
	for i := 0; i < 200; i++ {
		src.m[fmt.Sprintf("k%d", i)] = "v"
	}
	st, err := New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 200; i++ {
		if _, err := st.Get(t.Context(), fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFlat := func() *snapshot {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if s := st.snap.Load(); s.flat != nil {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatal("the snapshot never became flat")
			}
			runtime.Gosched()
		}
	}
	s := waitFlat()
	if len(s.flat) != s.len() || s.len() != 200 {
		t.Fatalf("flat map of %d entries for a trie of %d", len(s.flat), s.len())
	}
	s.each(func(k string, e *entry) {
		if s.flat[k] != e || s.getHashed(k, hashKey(k)) != e {
			t.Fatalf("%q: the map and the trie disagree", k)
		}
	})
	if err := st.Refresh(t.Context(), "k7"); err != nil {
		t.Fatal(err)
	}
	if s2 := waitFlat(); s2 == s || s2.get("k7") == s.get("k7") {
		t.Fatal("the refreshed entry is not in the newest flat snapshot")
	}
}

type mapSource struct{ m map[string]string }

func (m *mapSource) Fetch(_ context.Context, k string) (Versions, error) {
	v, ok := m.m[k]
	if !ok {
		return Versions{}, ErrNotFound
	}
	return Versions{Current: NewSecretString(k, "1", v)}, nil
}
