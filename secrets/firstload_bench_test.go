package secrets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// BenchmarkFirstLoad measures a Store's first loads of n keys, one after
// the other: each op makes a Store and reads every key once. The cost per
// key must not grow with the number of keys already loaded.
func BenchmarkFirstLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			src := memory.New()
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%d", i)
				src.Set(keys[i], "value")
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				st, err := secrets.New(src)
				if err != nil {
					b.Fatal(err)
				}
				for _, k := range keys {
					if _, err := st.Get(ctx, k); err != nil {
						b.Fatal(err)
					}
				}
				st.Close()
			}
		})
	}
}

// BenchmarkFieldFirstGets reads 100 fields of one 1 MiB JSON value for the
// first time; each op is a new Store.
func BenchmarkFieldFirstGets(b *testing.B) {
	doc := map[string]string{}
	for i := 0; i < 100; i++ {
		doc[fmt.Sprintf("f%d", i)] = "v"
	}
	doc["padding"] = strings.Repeat("x", 1<<20)
	raw, _ := json.Marshal(doc)
	src := memory.New()
	src.Set("big", string(raw))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		st, err := secrets.New(src)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if _, err := st.Get(ctx, fmt.Sprintf("big#f%d", i)); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
	}
}
