package awssm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestChaos: the fake throttles every request for a while, then fails them
// with 500s. The Store keeps serving the last good values, records
// ErrTransient in each key's Status, backs off further at each failure, and
// once the fake heals it recovers, picking up a rotation that happened
// during the outage.
func TestChaos(t *testing.T) {
	srv, src := newSource(t, awssm.WithMaxAttempts(1)) // one request per call: exact counts
	const backoffMin, backoffMax = time.Second, time.Hour
	st, clk := newStore(t, src, secrets.WithBackoff(backoffMin, backoffMax))
	ctx := ctxT(t)

	var keys []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("chaos/%d", i)
		srv.Put(name, "good-"+name)
		keys = append(keys, "awssm://"+name)
		if _, err := st.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	versions := map[string]string{}
	for _, k := range keys {
		s, _ := st.Status(k)
		versions[k] = s.Version
	}

	// The fake fails every request: throttling first, then 500s.
	phases := []struct {
		kind   smtest.FaultKind
		rounds int
		check  func(error) bool
	}{
		{smtest.Throttle, 4, func(err error) bool {
			var ae smithy.APIError
			return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
		}},
		{smtest.InternalError, 4, func(err error) bool {
			var ise *types.InternalServiceError
			return errors.As(err, &ise)
		}},
	}
	failures := 0
	var maxDelay time.Duration
	for _, ph := range phases {
		remove := srv.AddFault(smtest.Fault{Kind: ph.kind})
		for r := 0; r < ph.rounds; r++ {
			before := srv.TotalCalls()
			// Wake every key at once: advance to the latest due time (the
			// TTL at first, then the latest retry).
			var latest time.Time
			for _, k := range keys {
				s, _ := st.Status(k)
				if s.NextRefresh.After(latest) {
					latest = s.NextRefresh
				}
			}
			clk.Advance(latest.Sub(clk.Now()))
			failures++
			now := clk.Now()
			waitStatuses(t, st, clk, keys, func(s secrets.KeyStatus) bool {
				return s.Failures == failures && s.LastErrorAt.Equal(now)
			})
			// One batch call, then at most one per key: the throttled
			// batch falls back to DescribeSecret, and the first throttled
			// DescribeSecret stops the rest.
			if n := srv.TotalCalls() - before; n < 1 || n > 1+len(keys) {
				t.Fatalf("failing round %d cost %d calls %v", failures, n, srv.Calls())
			}
			// Backoff: full jitter under min·2ⁿ⁻¹ (capped), never zero.
			ceiling := backoffMin << (failures - 1)
			for _, k := range keys {
				s, _ := st.Status(k)
				if !errors.Is(s.LastError, secrets.ErrTransient) || !ph.check(s.LastError) {
					t.Fatalf("round %d, %s: LastError = %v, want ErrTransient from %v", failures, k, s.LastError, ph.kind)
				}
				delay := s.NextRefresh.Sub(now)
				if delay <= 0 || delay >= ceiling {
					t.Fatalf("round %d, %s: next refresh in %v, want in (0, %v)", failures, k, delay, ceiling)
				}
				maxDelay = max(maxDelay, delay)
				// The last good value is served throughout.
				got, err := st.Get(ctx, k)
				if err != nil || got.Version() != versions[k] {
					t.Fatalf("round %d: Get(%s) = version %q, %v; want the last good value", failures, k, got.Version(), err)
				}
			}
		}
		remove()
	}
	// After eight failures the ceiling is 128s; that no delay exceeded the
	// 1s of the first (a chance of 2⁻²⁸) would mean the backoff does not grow.
	if maxDelay <= backoffMin {
		t.Fatalf("backoff never grew past %v over %d failures", backoffMin, failures)
	}

	// A rotation during the outage, then the fake heals.
	srv.Put("chaos/1", "rotated")
	var latest time.Time
	for _, k := range keys {
		s, _ := st.Status(k)
		if s.NextRefresh.After(latest) {
			latest = s.NextRefresh
		}
	}
	clk.Advance(latest.Sub(clk.Now()))
	waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	for _, k := range keys {
		s, _ := st.Status(k)
		if s.LastError != nil || s.Failures != 0 {
			t.Fatalf("%s after healing: %+v", k, s)
		}
	}
	v, err := st.Versions(ctx, "awssm://chaos/1")
	if err != nil || v.Current.Reveal() != "rotated" || v.Previous.Reveal() != "good-chaos/1" {
		t.Fatalf("the rotation during the outage was not picked up: %v", err)
	}
	if got, err := st.Get(ctx, "awssm://chaos/0"); err != nil || got.Reveal() != "good-chaos/0" {
		t.Fatalf("chaos/0 after healing: %v", err)
	}
	if err := st.Health(ctx); err != nil {
		t.Fatalf("Health after healing: %v", err)
	}
}
