package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// seed puts n secrets named prefix-000... with two versions each and returns
// requests for them with the versions known.
func seed(t testing.TB, srv *smtest.Server, src *awssm.Source, prefix string, n int) []secrets.Request {
	t.Helper()
	reqs := make([]secrets.Request, n)
	for i := range reqs {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		srv.Put(name, "one")
		srv.Put(name, "two")
		reqs[i].Key = name
	}
	for i, r := range src.FetchMany(ctxT(t), reqs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		reqs[i].Known = r.Versions
	}
	return reqs
}

func TestFetchManyChunksByTwenty(t *testing.T) {
	srv, src := newSource(t)
	reqs := seed(t, srv, src, "chunk", 45)
	srv.ResetCalls()
	res := src.FetchMany(ctxT(t), reqs)
	for i, r := range res {
		if r.Err != nil || !r.Unchanged {
			t.Fatalf("result %d: unchanged=%v err=%v", i, r.Unchanged, r.Err)
		}
	}
	if c := srv.Calls(); c["BatchGetSecretValue"] != 3 || srv.TotalCalls() != 3 {
		t.Fatalf("45 unchanged keys cost %v, want 3 BatchGetSecretValue", c)
	}
}

func TestFetchManyMixedRequests(t *testing.T) {
	srv, src := newSource(t)
	srv.Put("mix/plain", "p1")
	pinned := srv.Put("mix/plain", "p2")
	srv.Put("mix/plain", "p3")
	pending := srv.Put("mix/plain", "p4", "AWSPENDING")
	srv.PutBinary("mix/binary", []byte{0, 1, 2, 0xff})
	arn := srv.ARN("mix/plain")
	reqs := []secrets.Request{
		{Key: "mix/plain"},
		{Key: "mix/plain?versionId=" + pinned},
		{Key: "mix/plain?versionStage=AWSPENDING"},
		{Key: "mix/binary"},
		{Key: arn},
		{Key: arn[:len(arn)-7]}, // partial ARN
		{Key: "mix/plain"},      // the same key twice
		{Key: "mix/plain?versionStage=AWSPREVIOUS"},
		{Key: "mix/plain?color=blue"},
	}
	srv.ResetCalls()
	res := src.FetchMany(ctxT(t), reqs)
	want := []struct{ cur, prev, pend string }{
		{"p3", "p2", "p4"}, {"p2", "", ""}, {"p4", "", ""}, {"\x00\x01\x02\xff", "", ""}, {"p3", "p2", "p4"}, {"p3", "p2", "p4"}, {"p3", "p2", "p4"}, {"p2", "", ""},
	}
	for i, w := range want {
		r := res[i]
		if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != w.cur || r.Versions.Previous.Reveal() != w.prev || r.Versions.Pending.Reveal() != w.pend {
			t.Fatalf("result %d (%s): current %q previous %q pending %q err %v", i, reqs[i].Key,
				r.Versions.Current.Reveal(), r.Versions.Previous.Reveal(), r.Versions.Pending.Reveal(), r.Err)
		}
	}
	if v := res[2].Versions.Current.Version(); v != pending {
		t.Fatalf("AWSPENDING version %q, want %q", v, pending)
	}
	if !errors.Is(res[8].Err, secrets.ErrInvalid) {
		t.Fatalf("unknown query parameter: err = %v", res[8].Err)
	}
	// One batch for the five plain keys (three ids); per plain request one
	// DescribeSecret, and for mix/plain's four the reads of AWSPREVIOUS and
	// AWSPENDING by id; one read for each of the three keys with a query.
	if c := srv.Calls(); c["BatchGetSecretValue"] != 1 || c["DescribeSecret"] != 5 || c["GetSecretValue"] != 4*2+3 {
		t.Fatalf("calls = %v", c)
	}
}

// TestBatchThrottledFallsBack: a throttled BatchGetSecretValue is not
// retried; its keys are polled with DescribeSecret.
func TestBatchThrottledFallsBack(t *testing.T) {
	srv, src := newSource(t) // default: SDK retries allowed, but not for the batch's throttling
	reqs := seed(t, srv, src, "thr", 30)
	srv.Put("thr-007", "three") // one rotated
	defer srv.AddFault(smtest.Fault{Op: "BatchGetSecretValue", Kind: smtest.Throttle})()
	srv.ResetCalls()
	res := src.FetchMany(ctxT(t), reqs)
	for i, r := range res {
		switch {
		case r.Err != nil:
			t.Fatalf("result %d: %v", i, r.Err)
		case i == 7 && (r.Unchanged || r.Versions.Current.Reveal() != "three" || r.Versions.Previous.Reveal() != "two"):
			t.Fatalf("rotated key: unchanged=%v", r.Unchanged)
		case i != 7 && !r.Unchanged:
			t.Fatalf("result %d changed", i)
		}
	}
	// Two batch calls, each throttled once; 30 DescribeSecret; the rotated
	// key's new AWSCURRENT by id (its AWSPREVIOUS is the known current).
	if c := srv.Calls(); c["BatchGetSecretValue"] != 2 || c["DescribeSecret"] != 30 || c["GetSecretValue"] != 1 {
		t.Fatalf("calls = %v", c)
	}
}

// TestThrottledFallbackStops: when DescribeSecret is throttled too, the
// rest of the round fails at once instead of adding to the load.
func TestThrottledFallbackStops(t *testing.T) {
	srv, src := newSource(t, awssm.WithConcurrency(1), awssm.WithMaxAttempts(1))
	reqs := seed(t, srv, src, "storm", 10)
	defer srv.AddFault(smtest.Fault{Kind: smtest.Throttle})()
	srv.ResetCalls()
	res := src.FetchMany(ctxT(t), reqs)
	for i, r := range res {
		if !errors.Is(r.Err, secrets.ErrTransient) || !apiCode("ThrottlingException")(r.Err) {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	if c := srv.Calls(); c["BatchGetSecretValue"] != 1 || c["DescribeSecret"] != 1 || srv.TotalCalls() != 2 {
		t.Fatalf("calls = %v, want one batch and one DescribeSecret", c)
	}
}

// TestBatchDeniedIsNotTriedAgain: without secretsmanager:BatchGetSecretValue
// the source polls per key, and stops asking for the batch.
func TestBatchDeniedIsNotTriedAgain(t *testing.T) {
	srv, src := newSource(t)
	reqs := seed(t, srv, src, "deny", 5)
	defer srv.AddFault(smtest.Fault{Op: "BatchGetSecretValue", Kind: smtest.AccessDenied})()
	for round := 0; round < 3; round++ {
		srv.ResetCalls()
		for i, r := range src.FetchMany(ctxT(t), reqs) {
			if r.Err != nil || !r.Unchanged {
				t.Fatalf("round %d result %d: %v", round, i, r.Err)
			}
		}
		wantBatch := 0
		if round == 0 {
			wantBatch = 1
		}
		if c := srv.Calls(); c["BatchGetSecretValue"] != wantBatch || c["DescribeSecret"] != 5 {
			t.Fatalf("round %d: calls = %v", round, c)
		}
	}
}

func TestWithBatchOff(t *testing.T) {
	srv, src := newSource(t, awssm.WithBatch(false))
	reqs := seed(t, srv, src, "off", 5)
	srv.ResetCalls()
	for _, r := range src.FetchMany(ctxT(t), reqs) {
		if r.Err != nil || !r.Unchanged {
			t.Fatal(r.Err)
		}
	}
	if c := srv.Calls(); c["BatchGetSecretValue"] != 0 || c["DescribeSecret"] != 5 {
		t.Fatalf("calls = %v", c)
	}
}

// TestBatchTransientFailure: a 500 on the batch fails its keys as
// transient (after the SDK's one retry), without a per-key storm.
func TestBatchTransientFailure(t *testing.T) {
	srv, src := newSource(t, awssm.WithMaxRetryDelay(1))
	reqs := seed(t, srv, src, "ise", 25)
	defer srv.AddFault(smtest.Fault{Op: "BatchGetSecretValue", Kind: smtest.InternalError})()
	srv.ResetCalls()
	for i, r := range src.FetchMany(ctxT(t), reqs) {
		if !errors.Is(r.Err, secrets.ErrTransient) {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	if c := srv.Calls(); c["BatchGetSecretValue"] != 2*2 || srv.TotalCalls() != 4 {
		t.Fatalf("calls = %v, want 2 batches × 2 attempts", c)
	}
}

// TestRotationBetweenBatchAndPrevious: AWSCURRENT moves after the batch read
// it and before DescribeSecret names AWSPREVIOUS. The source takes the
// versions DescribeSecret names, reading the new current by id, and returns
// a pair that existed.
func TestRotationBetweenBatchAndPrevious(t *testing.T) {
	srv, src := newSource(t)
	reqs := seed(t, srv, src, "race", 2)
	second := srv.Put("race-000", "three")
	remove := srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.Hold, Count: 1})
	srv.ResetCalls()
	done := make(chan []secrets.Result, 1)
	go func() { done <- src.FetchMany(context.Background(), reqs) }()
	if err := srv.WaitForCalls(ctxT(t), "DescribeSecret", 1); err != nil {
		t.Fatal(err)
	}
	third := srv.Put("race-000", "four") // while AWSPREVIOUS is being read
	remove()
	res := <-done
	r := res[0]
	if r.Err != nil || r.Unchanged {
		t.Fatalf("unchanged=%v err=%v", r.Unchanged, r.Err)
	}
	if r.Versions.Current.Version() != third || r.Versions.Previous.Version() != second {
		t.Fatalf("got current %q previous %q, want %q and %q (a pair that existed)",
			r.Versions.Current.Reveal(), r.Versions.Previous.Reveal(), "four", "three")
	}
	if !res[1].Unchanged {
		t.Fatal("the other key changed")
	}
}
