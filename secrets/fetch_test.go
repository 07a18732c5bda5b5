package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestEmptyValueIsRefused: the Store serves no empty value. A source that
// returns one fails as ErrInvalid, on a first load and on a refresh, and
// the last good value stays; so does a selected field that is empty.
func TestEmptyValueIsRefused(t *testing.T) {
	f := newFixture(t)
	f.src.Set("empty", "")
	if _, err := f.store.Get(f.ctx(), "empty"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("first load of an empty value: %v, want ErrInvalid", err)
	}
	f.src.Set("db", `{"password":""}`)
	if _, err := f.store.Get(f.ctx(), "db#password"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("first load of an empty field: %v, want ErrInvalid", err)
	}

	f.src.Set("k", "good")
	f.get("k")
	f.src.Set("k", "")
	if err := f.store.Refresh(f.ctx(), "k"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to an empty value: %v, want ErrInvalid", err)
	}
	if got := f.get("k").Reveal(); got != "good" {
		t.Fatalf("Get = %q, want the last good value", got)
	}

	f.src.Set("cred", `{"password":"pw1"}`)
	f.get("cred#password")
	f.src.Set("cred", `{"password":""}`)
	if err := f.store.Refresh(f.ctx(), "cred#password"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to an empty field: %v, want ErrInvalid", err)
	}
	if got := f.get("cred#password").Reveal(); got != "pw1" {
		t.Fatalf("Get = %q, want the last good value", got)
	}
	if err := f.store.Reload(f.ctx()); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Reload with an empty field: %v, want ErrInvalid", err)
	}
}

// TestEmptyPreviousIsNone: an empty previous version is no previous
// version, not an empty credential to fall back on.
func TestEmptyPreviousIsNone(t *testing.T) {
	st, err := secrets.New(pairSrc{cur: "new", prev: ""})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.Versions(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Previous.IsZero() {
		t.Fatal("an empty previous version is served")
	}
}

type pairSrc struct{ cur, prev string }

func (p pairSrc) Fetch(_ context.Context, k string) (secrets.Versions, error) {
	return secrets.Versions{
		Current:  secrets.NewSecretString(k, "2", p.cur),
		Previous: secrets.NewSecretString(k, "1", p.prev),
	}, nil
}

func TestSourcePanicIsAnError(t *testing.T) {
	st, err := secrets.New(panicSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "k")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

type panicSource struct{}

func (panicSource) Fetch(context.Context, string) (secrets.Versions, error) {
	panic("boom " + canary)
}

func TestFetchTimeoutIsTransient(t *testing.T) {
	src := newCtl()
	src.Set("k", "v")
	release := src.hold("k")
	defer release()
	st, err := secrets.New(src, secrets.WithFetchTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get(context.Background(), "k"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
}

// hostileSrc batches and detects changes, and misbehaves on demand.
type hostileSrc struct {
	mem  *memory.Source
	mu   sync.Mutex
	mode string
}

func (h *hostileSrc) setMode(m string) { h.mu.Lock(); h.mode = m; h.mu.Unlock() }
func (h *hostileSrc) getMode() string  { h.mu.Lock(); defer h.mu.Unlock(); return h.mode }

func (h *hostileSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	if h.getMode() == "panic" {
		panic("SECRETVALUE-in-panic")
	}
	return h.mem.Fetch(ctx, key)
}

func (h *hostileSrc) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	switch h.getMode() {
	case "panic":
		panic(errors.New("SECRETVALUE-in-panic"))
	case "short":
		return make([]secrets.Result, len(reqs)-1)
	case "long":
		return make([]secrets.Result, len(reqs)+1)
	case "unchanged":
		out := make([]secrets.Result, len(reqs))
		for i := range out {
			out[i].Unchanged = true
		}
		return out
	case "zero":
		return make([]secrets.Result, len(reqs))
	}
	out := make([]secrets.Result, len(reqs))
	for i, r := range reqs {
		v, err := h.mem.Fetch(ctx, r.Key)
		out[i] = secrets.Result{Versions: v, Err: err}
	}
	return out
}

func (h *hostileSrc) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	switch h.getMode() {
	case "panic":
		panic("SECRETVALUE-in-panic")
	case "unchanged":
		return secrets.Result{Unchanged: true}
	}
	v, err := h.mem.Fetch(ctx, req.Key)
	return secrets.Result{Versions: v, Err: err}
}

// TestHostileBatchSource: FetchMany panicking, answering short or
// long, answering Unchanged to a Reload (which shows no values), or zero
// Results: each round keeps the good values, Reload fails whole with a typed
// error, and neither errors nor logs carry the value or the panic's text.
func TestHostileBatchSource(t *testing.T) {
	for _, mode := range []string{"panic", "short", "long", "unchanged", "zero"} {
		t.Run(mode, func(t *testing.T) {
			h := &hostileSrc{mem: memory.New()}
			h.mem.Set("a", "SECRETVALUE-a1")
			h.mem.Set("b", "SECRETVALUE-b1")
			var logs bytes.Buffer
			var lmu sync.Mutex
			clk := fakeclock.New(epoch)
			rounds := make(chan struct{}, 16)
			st, err := secrets.New(h, secrets.WithClock(clk), secrets.WithTTL(time.Minute),
				secrets.WithLogger(slog.New(slog.NewTextHandler(rvWriter{&lmu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			secrets.SetRoundHook(st, func() { rounds <- struct{}{} })
			ctx := t.Context()
			for _, k := range []string{"a", "b"} {
				if _, err := st.Get(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			h.mem.Set("a", "SECRETVALUE-a2")
			h.setMode(mode)
			err = st.Reload(ctx)
			var re *secrets.ReloadError
			if !errors.As(err, &re) {
				t.Fatalf("Reload: %v (%T), want a *ReloadError", err, err)
			}
			if strings.Contains(err.Error(), "SECRETVALUE") {
				t.Fatalf("error holds a value: %v", err)
			}
			clk.Advance(2 * time.Minute)
			select {
			case <-rounds:
			case <-time.After(10 * time.Second):
				t.Fatal("no round")
			}
			for _, k := range []string{"a", "b"} {
				got, err := st.Get(ctx, k)
				if err != nil || got.Reveal() != "SECRETVALUE-"+k+"1" {
					if !(mode == "unchanged") {
						t.Fatalf("Get(%s) = %q, %v", k, got.Reveal(), err)
					}
				}
			}
			h.setMode("")
			if err := st.Refresh(ctx); err != nil {
				t.Fatalf("Refresh after the source recovered: %v", err)
			}
			if got, _ := st.Get(ctx, "a"); got.Reveal() != "SECRETVALUE-a2" {
				t.Fatalf("a = %q after recovery", got.Reveal())
			}
			lmu.Lock()
			defer lmu.Unlock()
			if strings.Contains(logs.String(), "SECRETVALUE") {
				t.Fatalf("logs hold a value:\n%s", logs.String())
			}
		})
	}
}

type rvWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l rvWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
