package awssm_test

import (
	"testing"

	"github.com/rotorhq/rotor/sources/awssm"
)

// BenchmarkRefreshRound100 is the Store's refresh round over 100 unchanged
// secrets: FetchMany with the versions known, against the fake over
// loopback HTTP with the real SDK client. calls/op counts HTTP requests.
func BenchmarkRefreshRound100(b *testing.B) {
	benchRound(b)
}

// BenchmarkRefreshRound100PerKey is the same round without batching: one
// DescribeSecret per secret.
func BenchmarkRefreshRound100PerKey(b *testing.B) {
	benchRound(b, awssm.WithBatch(false))
}

func benchRound(b *testing.B, opts ...awssm.Option) {
	srv, src := newSource(b, opts...)
	reqs := seed(b, srv, src, "bench", 100)
	ctx := ctxT(b)
	srv.ResetCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range src.FetchMany(ctx, reqs) {
			if r.Err != nil || !r.Unchanged {
				b.Fatalf("unchanged=%v err=%v", r.Unchanged, r.Err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(srv.TotalCalls())/float64(b.N), "calls/op")
}
