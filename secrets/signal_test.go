package secrets_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// listenHUP registers the test's own SIGHUP handler, standing for the
// application's, for the whole test: the process then never takes SIGHUP's
// default action (exit), and the test can see that ReloadOnSignal leaves
// other handlers alone.
func listenHUP(t *testing.T) chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(ch) })
	return ch
}

func hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func TestSIGHUPReloads(t *testing.T) {
	app := listenHUP(t)
	f := newFixture(t)
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", "2")
	sub := f.store.Subscribe()
	defer sub.Close()

	stop := secrets.ReloadOnSignal(context.Background(), f.store)
	hup(t)
	changes, err := sub.Next(f.ctx())
	if err != nil || len(changes) != 1 || changes[0].Key != "k" {
		t.Fatalf("after SIGHUP: changes %+v, err %v", changes, err)
	}
	if got := f.get("k").Reveal(); got != "2" {
		t.Fatalf("after SIGHUP Get = %q", got)
	}
	stop()
	stop() // harmless

	// The application's own handler still receives SIGHUP, and the Store
	// no longer reloads on it.
	drain(app)
	fetches := f.src.count("k")
	hup(t)
	select {
	case <-app:
	case <-time.After(10 * time.Second):
		t.Fatal("the application's handler lost SIGHUP")
	}
	if c := f.src.count("k"); c != fetches {
		t.Fatalf("a reload ran after stop (%d fetches, was %d)", c, fetches)
	}
}

func drain(ch chan os.Signal) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestSIGHUPBurst sends 1,000 SIGHUPs while a reload is held at the source,
// and checks they cost one more reload, not a thousand.
func TestSIGHUPBurst(t *testing.T) {
	app := listenHUP(t)
	f := newFixture(t)
	f.src.Set("k", "v")
	f.get("k") // fetch 1
	release := f.src.hold("k")
	defer release()

	stop := secrets.ReloadOnSignal(context.Background(), f.store)
	defer stop()
	hup(t)
	f.src.waitFetches(t, "k", 2) // the first reload, held
	for i := 0; i < 999; i++ {
		hup(t)
	}
	// Let the runtime relay what it still holds: a signal sent after the
	// burst reaches the application's handler only once the burst's have
	// been relayed to every handler.
	drain(app)
	hup(t)
	<-app
	release()
	f.src.waitFetches(t, "k", 3) // the one coalesced reload
	eventually(t, "the reloads to finish", func() bool { return secrets.ReloadIdle(f.store) })
	stop()
	if c := f.src.count("k") - 1; c > 2 {
		t.Fatalf("a burst of 1,000 signals caused %d reloads, want at most 2", c)
	}
}

// TestSignalDispositionRestored runs a child process that reloads on SIGHUP,
// stops, and sends itself SIGHUP again: with the default disposition back, the
// signal ends the child.
func TestSignalDispositionRestored(t *testing.T) {
	if os.Getenv("ROTOR_SIGNAL_CHILD") == "1" {
		signalChild()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestSignalDispositionRestored$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROTOR_SIGNAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child did not die of a signal: err %v, output:\n%s", err, out)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Fatalf("child ended with %v, want killed by SIGHUP; output:\n%s", ee, out)
	}
	if string(out) != "reloaded\nstopped\n" {
		t.Fatalf("child output %q", out)
	}
}

func signalChild() {
	src := newCtl()
	src.Set("k", "v")
	st, err := secrets.New(src)
	if err != nil {
		os.Exit(3)
	}
	ctx := context.Background()
	if _, err := st.Get(ctx, "k"); err != nil {
		os.Exit(3)
	}
	stop := secrets.ReloadOnSignal(ctx, st)
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.After(30 * time.Second)
	for src.count("k") < 2 {
		src.mu.Lock()
		ch := src.changed
		src.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			os.Exit(4)
		}
	}
	os.Stdout.WriteString("reloaded\n")
	stop()
	os.Stdout.WriteString("stopped\n")
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	// The signal's default action ends the process; should it not, the
	// parent's timeout reports it.
	select {}
}
