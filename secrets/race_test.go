package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// contentSrc versions values by content, as the file and env sources do, so
// a rollback brings back an earlier version id.
type contentSrc struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *contentSrc) set(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
}

func (c *contentSrc) Fetch(_ context.Context, k string) (secrets.Versions, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return secrets.Versions{}, secrets.ErrNotFound
	}
	return secrets.Versions{Current: secrets.NewSecretString(k, secrets.ContentVersion([]byte(v)), v)}, nil
}

// TestNewerUnchangedFetchIsNotLost: an older fetch's rotation is applied
// after a newer fetch saw the value rolled back. The Store must end up
// serving what the source holds, not the older fetch's value.
func TestNewerUnchangedFetchIsNotLost(t *testing.T) {
	src := &contentSrc{m: map[string]string{"k": "v1", "k2": "a"}}
	gateA, gateB := make(chan struct{}), make(chan struct{})
	inA, inB := make(chan struct{}), make(chan struct{})
	val := func(ctx context.Context, key string, c secrets.Versions) error {
		switch {
		case key == "k" && c.Current.Reveal() == "v2":
			select {
			case <-inA:
			default:
				close(inA)
				<-gateA
			}
		case key == "k2" && c.Current.Reveal() == "b":
			close(inB)
			<-gateB
		}
		return nil
	}
	st, err := secrets.New(src, secrets.WithValidator(val))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Get(ctx, "k")
	st.Get(ctx, "k2")
	sub := st.Subscribe()
	defer sub.Close()

	src.set("k", "v2")
	doneA := make(chan error, 1)
	go func() { doneA <- st.Refresh(ctx, "k") }() // fetches v2; its validator holds
	<-inA
	src.set("k", "v1") // rolled back
	src.set("k2", "b")
	doneB := make(chan error, 1)
	go func() { doneB <- st.Refresh(ctx, "k", "k2") }() // sees v1 for k; k2's validator holds
	<-inB
	close(gateA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	close(gateB)
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	// The newer fetch's verdict was reached against v1; v2 has been
	// served since, so the key is polled again and the Store converges on
	// the source.
	for {
		if got, _ := st.Get(ctx, "k"); got.Reveal() == "v1" {
			break
		}
		if _, err := sub.Next(ctx); err != nil {
			got, _ := st.Get(ctx, "k")
			t.Fatalf("the Store kept serving %q while the source holds v1", got.Reveal())
		}
	}
}

// TestOverlappingFetchesAnnounceOnce: two fetches that see the same rotation
// announce it once.
func TestOverlappingFetchesAnnounceOnce(t *testing.T) {
	src := &contentSrc{m: map[string]string{"k": "v1", "k2": "a"}}
	gates := []chan struct{}{make(chan struct{}), make(chan struct{})}
	entered := make(chan struct{}, 2)
	var mu sync.Mutex
	n := 0
	val := func(ctx context.Context, key string, c secrets.Versions) error {
		if key == "k" {
			mu.Lock()
			g := gates[n]
			n++
			mu.Unlock()
			entered <- struct{}{}
			<-g
		}
		return nil
	}
	st, err := secrets.New(src, secrets.WithValidator(val))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.Get(ctx, "k")
	st.Get(ctx, "k2")
	sub := st.Subscribe()
	defer sub.Close()
	src.set("k", "v2")
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- st.Refresh(ctx, "k") }()
	<-entered
	go func() { doneB <- st.Refresh(ctx, "k", "k2") }()
	<-entered
	close(gates[0])
	<-doneA
	first := sub.Changes()
	close(gates[1])
	<-doneB
	if second := sub.Changes(); len(first) != 1 || len(second) != 0 {
		t.Fatalf("changes: first %+v, then %+v; want one notice", first, second)
	}
}

// rvWatchSrc is a memory source with a Watch whose callback the test holds.
type rvWatchSrc struct {
	*memory.Source
	mu      sync.Mutex
	changed func(string)
}

func (w *rvWatchSrc) Watch(ctx context.Context, changed func(string)) error {
	w.mu.Lock()
	w.changed = changed
	w.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (w *rvWatchSrc) notify(key string) {
	w.mu.Lock()
	c := w.changed
	w.mu.Unlock()
	if c != nil {
		c(key)
	}
}

// TestStressTestBeforeSwap: many goroutines rotate the backend between
// good and bad documents and race Get of field keys (first reads included),
// Refresh, Reload, background rounds (fake clock), change notices, Forget of
// field keys and auth-failure refreshes (Call). A validator registered for
// the whole value rejects any document holding "bad". No reader may ever see
// a field of a bad document (the first load is good, and "db" itself is
// never forgotten, so no later read is a first load of the value).
func TestStressTestBeforeSwap(t *testing.T) {
	src := &rvWatchSrc{Source: memory.New()}
	src.Set("db", `{"user":"u0","password":"p0","host":"h0"}`)
	clk := fakeclock.New(epoch)
	var validated atomic.Int64
	v := func(ctx context.Context, key string, c secrets.Versions) error {
		validated.Add(1)
		if strings.Contains(c.Current.Reveal(), "bad") {
			return errors.New("rejected")
		}
		return nil
	}
	st, err := secrets.New(src, secrets.WithClock(clk), secrets.WithTTL(time.Minute),
		secrets.WithBackoff(time.Millisecond, time.Second), secrets.WithValidator(v, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Get(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	fields := []string{"db#user", "db#password", "db#host", "db#/password"}
	var bad atomic.Value
	bad.Store("")
	check := func(key string, s secrets.Secret, err error) {
		if err == nil && strings.Contains(s.Reveal(), "bad") {
			bad.CompareAndSwap("", fmt.Sprintf("%s served %q", key, s.Reveal()))
		}
	}
	// Each goroutine runs a fixed number of operations: the test's reach
	// does not depend on the machine's speed, only its interleavings do.
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	var wg sync.WaitGroup
	run := func(f func(r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for range iters {
				f(r)
			}
		}()
	}
	yield := func(r *rand.Rand, n int) {
		for i := r.IntN(n); i > 0; i-- {
			runtime.Gosched()
		}
	}
	var n atomic.Int64
	run(func(r *rand.Rand) { // the backend rotates
		i := n.Add(1)
		if r.IntN(3) == 0 {
			src.Set("db", fmt.Sprintf(`{"user":"u%d","password":"bad%d","host":"h%d"}`, i, i, i))
		} else if r.IntN(2) == 0 {
			src.Set("db", fmt.Sprintf(`{"user":"bad%d","password":"p%d"}`, i, i))
		} else {
			src.Set("db", fmt.Sprintf(`{"user":"u%d","password":"p%d","host":"h%d"}`, i, i, i))
		}
		yield(r, 50)
	})
	for range 3 {
		run(func(r *rand.Rand) { // readers, first reads included
			k := fields[r.IntN(len(fields))]
			s, err := st.Get(ctx, k)
			check(k, s, err)
			vw := st.View()
			s, err = vw.Get(ctx, fields[r.IntN(len(fields))])
			check("view", s, err)
		})
	}
	run(func(r *rand.Rand) { st.Forget(fields[r.IntN(len(fields))]) })
	run(func(r *rand.Rand) { _ = st.Refresh(ctx, fields[r.IntN(len(fields))]) })
	run(func(r *rand.Rand) { _ = st.Reload(ctx) })
	run(func(r *rand.Rand) { src.notify("db"); yield(r, 20) })
	// The clock runs until every other goroutine is done: a call waiting
	// for a newer credential after its authentication failure (see
	// WithAuthWait) ends when the clock passes its wait.
	stop := make(chan struct{})
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			clk.Advance(time.Duration(r.IntN(90)) * time.Second)
			yield(r, 50)
		}
	}()
	defer func() { close(stop); <-clockDone }()
	run(func(r *rand.Rand) {
		_ = secrets.Call(ctx, st, func(ctx context.Context) error {
			s, err := secrets.ViewFrom(ctx, st).Get(ctx, fields[r.IntN(len(fields))])
			check("call", s, err)
			return &secrets.StatusError{Code: 401, Status: "401 Unauthorized"}
		})
		clk.Advance(time.Second)
	})
	wg.Wait()
	if b := bad.Load().(string); b != "" {
		t.Fatalf("test before swap broken: %s (validations: %d, rotations: %d)", b, validated.Load(), n.Load())
	}
	t.Logf("validations: %d, rotations: %d", validated.Load(), n.Load())
}

// jitterSrc reads a monotone counter when a fetch starts and answers after a
// random number of yields: later fetches may answer first.
type jitterSrc struct{ n atomic.Int64 }

func (j *jitterSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	v := j.n.Load()
	for i := rand.IntN(200); i > 0; i-- {
		runtime.Gosched()
	}
	s := strconv.FormatInt(v, 10)
	return secrets.Versions{Current: secrets.NewSecretString(key, s, s)}, nil
}

// TestNeverBackwardsStress: served values never go backwards, whatever mix
// of Refresh, Reload, first loads, Forget and validators runs.
func TestNeverBackwardsStress(t *testing.T) {
	src := &jitterSrc{}
	src.n.Store(1)
	st, err := secrets.New(src, secrets.WithValidator(func(ctx context.Context, key string, c secrets.Versions) error {
		for i := rand.IntN(50); i > 0; i-- {
			runtime.Gosched()
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch rand.IntN(4) {
				case 0:
					_ = st.Refresh(ctx, "a")
				case 1:
					_ = st.Reload(ctx)
				case 2:
					_ = st.Refresh(ctx, "a", "b")
				case 3:
					src.n.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := int64(0)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := st.Get(ctx, "a")
			if err != nil {
				continue
			}
			v, _ := strconv.ParseInt(s.Reveal(), 10, 64)
			if v < last {
				bad.Store(fmt.Sprintf("went back from %d to %d", last, v))
			}
			last = v
		}
	}()
	for i := 0; i < 3000; i++ {
		runtime.Gosched()
		if i%100 == 0 {
			_ = st.Refresh(ctx, "a")
		}
	}
	for st.Refresh(ctx, "a") != nil {
	}
	close(stop)
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
}
