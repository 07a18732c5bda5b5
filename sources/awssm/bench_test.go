package awssm_test

import (
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/secrets"
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

// BenchmarkRefreshRound100InRotation is the batched round with 5 of the 100
// secrets in rotation (a pending version known): those are polled with
// DescribeSecret, the other 95 batched.
func BenchmarkRefreshRound100InRotation(b *testing.B) {
	benchRound(b, withPending(5))
}

// withPending, given to benchRound, stages a pending version for the first n
// secrets and has the round know it.
type withPending int

func benchRound(b *testing.B, opts ...any) {
	var srcOpts []awssm.Option
	pending := 0
	for _, o := range opts {
		switch o := o.(type) {
		case awssm.Option:
			srcOpts = append(srcOpts, o)
		case withPending:
			pending = int(o)
		}
	}
	srv, src := newSource(b, srcOpts...)
	reqs := seed(b, srv, src, "bench", 100)
	ctx := ctxT(b)
	for i := range pending {
		srv.Put(reqs[i].Key, "pending", "AWSPENDING")
		r := src.FetchIfChanged(ctx, reqs[i])
		if r.Err != nil || r.Versions.Pending.IsZero() {
			b.Fatalf("staging: %+v", r)
		}
		reqs[i].Known = r.Versions
	}
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

// BenchmarkColdRead1000 is a cold first read: 1,000 goroutines ask a new
// Store at once for a secret that has a previous version. "store" is rotor;
// "sdk" has 1,000 goroutines wait for one goroutine that makes the same two
// GetSecretValue calls (AWSCURRENT, then AWSPREVIOUS) with the bare client:
// the floor of a shared first load that returns a consistent pair.
func BenchmarkColdRead1000(b *testing.B) {
	srv, src := newSource(b)
	srv.Put("cold", "v1")
	srv.Put("cold", "v2")
	ctx := ctxT(b)
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			st, err := secrets.New(nil, secrets.WithSource("awssm", src))
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if v, err := st.Versions(ctx, "awssm://cold"); err != nil || v.Previous.IsZero() {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			st.Close()
		}
	})
	b.Run("sdk", func(b *testing.B) {
		client := srv.Client()
		for b.Loop() {
			var once sync.Once
			var wg sync.WaitGroup
			for range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					once.Do(func() {
						for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
							if _, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("cold"), VersionStage: aws.String(stage)}); err != nil {
								b.Error(err)
							}
						}
					})
				}()
			}
			wg.Wait()
		}
	})
}
