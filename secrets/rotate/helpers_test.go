package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeDB is a downstream that accepts one password at a time, as a
// database role does.
type fakeDB struct {
	mu         sync.Mutex
	accepted   string
	inUse      int
	failVerify bool
	down       bool
	revoked    int
	seq        int
}

var errDown = errors.New("fakedb: connection refused")

func (d *fakeDB) Check(_ context.Context, cur secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	if cur.Reveal() != d.accepted {
		return fmt.Errorf("%w: refused", rotate.ErrNotRotatable)
	}
	return nil
}

func (d *fakeDB) Next(context.Context, secrets.Secret) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return fmt.Appendf(nil, "pw-%d-%d", d.seq, time.Now().UnixNano()), nil
}

func (d *fakeDB) Set(_ context.Context, _, pending secrets.Secret) (map[string]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errDown
	}
	d.accepted = pending.Reveal()
	return map[string]string{"role": "app"}, nil
}

func (d *fakeDB) Verify(_ context.Context, pending secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	if d.failVerify || d.accepted != pending.Reveal() {
		return errors.New("fakedb: probe failed")
	}
	return nil
}

func (d *fakeDB) Restore(_ context.Context, current, _ secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	d.accepted = current.Reveal()
	return nil
}

func (d *fakeDB) InUse(context.Context, secrets.Secret, secrets.Secret, map[string]string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inUse, nil
}

func (d *fakeDB) Revoke(context.Context, secrets.Secret, secrets.Secret, map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.revoked++
	return nil
}

func (d *fakeDB) get() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted
}

// runClocked runs fn while advancing clk to each timer that fn arms, so that
// waits on the fake clock pass without any sleep.
func runClocked[T any](t *testing.T, clk *fakeclock.Clock, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		waited := make(chan error, 1)
		go func() {
			waited <- clk.WaitFor(ctx, func(ds []time.Time) bool { return len(ds) > 0 })
		}()
		select {
		case r := <-done:
			cancel()
			<-waited
			return r.v, r.err
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
			ds := clk.Timers()
			if len(ds) == 0 {
				continue
			}
			first := ds[0]
			for _, d := range ds {
				if d.Before(first) {
					first = d
				}
			}
			if d := first.Sub(clk.Now()); d > 0 {
				clk.Advance(d)
			} else {
				clk.Advance(0)
			}
		}
	}
}

// checkAgree asserts the end state of a rotation: nothing pending, no lock,
// and the downstream accepting what the store serves.
func checkAgree(t *testing.T, src *memory.Source, db *fakeDB, key string) secrets.Versions {
	t.Helper()
	v, err := src.Fetch(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pending.IsZero() {
		t.Fatalf("a version is still pending: %s", v.Pending.Version())
	}
	if got := db.get(); got != v.Current.Reveal() {
		t.Fatal("the downstream does not accept the store's current value")
	}
	rec, err := src.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Step.Terminal() {
		t.Fatalf("the rotation record is at step %q", rec.Step)
	}
	return v
}

func newAgent(t *testing.T, src secrets.Source, target rotate.Target, clk *fakeclock.Clock, owner string, opts ...rotate.Option) *rotate.Agent {
	t.Helper()
	opts = append([]rotate.Option{rotate.WithClock(clk), rotate.WithLogger(quiet()), rotate.WithOwner(owner),
		rotate.WithPollInterval(time.Second), rotate.WithLease(time.Minute)}, opts...)
	a, err := rotate.New(src, target, 10*time.Second, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
