package deploy_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if db.srv != nil {
		_ = db.srv.Stop()
	}
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	if err := goleak.Find(); err != nil && code == 0 {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
