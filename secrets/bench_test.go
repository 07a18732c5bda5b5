package secrets_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// mutexCache is the baseline: the design of popular caching clients, a map
// behind a mutex whose reads check each item's expiry.
type mutexCache struct {
	mu    sync.Mutex
	items map[string]mutexItem
	ttl   time.Duration
}

type mutexItem struct {
	value   string
	expires time.Time
}

func (c *mutexCache) Get(_ context.Context, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[key]
	if !ok || time.Now().After(it.expires) {
		return "", fmt.Errorf("miss")
	}
	return it.value, nil
}

func benchStore(b *testing.B) *secrets.Store {
	src := memory.New()
	for i := 0; i < 100; i++ {
		src.Set(fmt.Sprintf("key-%d", i), "value")
	}
	st, err := secrets.New(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	for i := 0; i < 100; i++ {
		if _, err := st.Get(context.Background(), fmt.Sprintf("key-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

func benchBaseline() *mutexCache {
	c := &mutexCache{items: map[string]mutexItem{}, ttl: time.Hour}
	for i := 0; i < 100; i++ {
		c.items[fmt.Sprintf("key-%d", i)] = mutexItem{"value", time.Now().Add(c.ttl)}
	}
	return c
}

// BenchmarkGetHit compares a cached Get with the baseline, serially and
// from all Ps at once.
func BenchmarkGetHit(b *testing.B) {
	ctx := context.Background()
	b.Run("rotor", func(b *testing.B) {
		st := benchStore(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Get(ctx, "key-42"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mutexmap", func(b *testing.B) {
		c := benchBaseline()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "key-42"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rotor-parallel", func(b *testing.B) {
		st := benchStore(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.Get(ctx, "key-42"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("mutexmap-parallel", func(b *testing.B) {
		c := benchBaseline()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, "key-42"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkColdStampede measures 1,000 goroutines asking at once for a key
// nobody has read yet; each op is one such stampede on a new key.
func BenchmarkColdStampede(b *testing.B) {
	src := memory.New()
	st, err := secrets.New(src)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("cold-%d", i)
		i++
		src.Set(key, "v")
		var wg sync.WaitGroup
		for g := 0; g < 1000; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Get(ctx, key); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

// BenchmarkReload100 measures a reload of 100 keys, none of which changed.
func BenchmarkReload100(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
