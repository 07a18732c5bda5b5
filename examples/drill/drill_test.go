package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
		os.Exit(code)
	}))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// built builds the drill's programs once for the test binary's tests.
func built(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "drill-bin-")
		if buildErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			buildErr = Build(ctx, buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// TestDrill runs every row, as ./test.sh does: the built example server, the
// load from the built MCP client, the rotations from the built rotators (the
// manual rows' rotate, the agent rows' examples/rotator, including the
// rotation whose verify fails and rolls back). It checks what happened
// (Check), never how fast; the table and the latency inside and outside
// rotation windows are printed.
func TestDrill(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bin = built(t)
	if testing.Verbose() {
		cfg.Log = os.Stdout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	t.Logf("%d rows in %v\n%s%s", len(cfg.Rows), time.Since(start).Round(time.Second), Table(res), Summary(res))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if problems := Check(r, cfg.Rotations); len(problems) > 0 {
			t.Errorf("%s, %s:\n%s", r.Row, r.Server, strings.Join(problems, "\n"))
		}
	}
}

// TestServerProcess starts the built example server in both modes as the
// drill does, with no database behind it (its database tool connects only
// when called): it prints its URL and token, lives through SIGHUP, and exits
// cleanly on SIGTERM.
func TestServerProcess(t *testing.T) {
	bin := built(t)
	for _, server := range []string{RotorServer, ReadOnceServer} {
		t.Run(server, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range map[string]string{
				"jwt_signing_key": newSecret() + newSecret(),
				"api_key":         newSecret(),
				"db.json":         `{"username":"app","password":"pw"}`,
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			p := &pass{cfg: Config{Bin: bin, TTL: time.Hour}, server: server}
			srv, url, token, err := p.startServer(ctx, dir, "postgres://127.0.0.1:1/postgres?sslmode=disable&pool_max_conns=2")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(url, "http://127.0.0.1:") || token == "" {
				t.Errorf("url %q, token of %d bytes", url, len(token))
			}
			if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// The SIGHUP is handled before the SIGTERM is sent: sent at
			// once, the two may be handled in either order, and one that
			// comes after the server stopped handling it ends the process.
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(srv.errs.String(), "reloaded on signal") {
				select {
				case <-srv.done:
					t.Fatalf("the server exited on SIGHUP: %v", srv.err)
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server did not report the reload%s", srv.errs)
				}
			}
			// A server killed by the SIGHUP would be reported here.
			if err := srv.terminate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRotateChecksItsArguments: the rotator refuses a role name it would
// have to quote, and an unknown order, before it touches anything.
func TestRotateChecksItsArguments(t *testing.T) {
	bin := built(t)
	for _, args := range [][]string{
		{"-secrets", t.TempDir(), "-role", "app; drop table x", "-first", "store"},
		{"-secrets", t.TempDir(), "-role", "app_a", "-first", "later"},
	} {
		cmd := exec.Command(filepath.Join(bin, rotatorBin), args...)
		cmd.Env = append(os.Environ(), wire.AdminURLEnv+"=postgres://127.0.0.1:1/postgres")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("rotate %q succeeded: %s", args, out)
		}
	}
}
