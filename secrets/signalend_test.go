package secrets

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSignalReloadNotAfterEnd: when ReloadOnSignal's context has ended by the
// time its spread wait is over, no reload follows, whichever of the two
// the wait saw first.
func TestSignalReloadNotAfterEnd(t *testing.T) {
	for i := 0; i < 40; i++ {
		src := newSigSource("1")
		st, err := New(src, WithClock(firingClock{}), WithReloadSpread(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(sigCtx(t), "k"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ch := make(chan os.Signal, 1)
		release := src.hold() // a reload that starts stays running
		st.reloadOnSignal(ctx, ch, syscall.SIGHUP)
		if !ReloadIdle(st) {
			t.Fatalf("run %d: a reload started after ReloadOnSignal's context ended", i)
		}
		st.Close()
		release()
	}
}
