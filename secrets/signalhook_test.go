package secrets

import (
	"os"
	"testing"
)

// FakeSignals replaces os/signal for one test of package secrets_test, as
// replaceSignals does for the tests of this package: deliver hands a signal
// to the channel ReloadOnSignal registered (dropping it when the channel is
// full, as os/signal does), and stopped is closed once ReloadOnSignal gives
// its signals back.
func FakeSignals(t *testing.T) (deliver func(os.Signal), stopped <-chan struct{}) {
	r := replaceSignals(t)
	return r.deliver, r.stopped
}
