package otelmetrics_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoOpenTelemetryWithoutTheAdapter: the library's packages compile no
// OpenTelemetry module, and the adapter compiles no golang-jwt: each user
// pays for what they import.
func TestNoOpenTelemetryWithoutTheAdapter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	deps := func(pkgs ...string) []string {
		t.Helper()
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"list", "-deps"}, pkgs...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", strings.Join(pkgs, " "), err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range deps("github.com/rotorhq/rotor/secrets", "github.com/rotorhq/rotor/jwtkeys") {
		if strings.HasPrefix(d, "go.opentelemetry.io/") {
			t.Errorf("secrets or jwtkeys depends on %s", d)
		}
	}
	for _, d := range deps("github.com/rotorhq/rotor/secrets/otelmetrics") {
		if strings.Contains(d, "golang-jwt") || strings.HasSuffix(d, "/rotor/jwtkeys") {
			t.Errorf("the adapter depends on %s", d)
		}
	}
}
