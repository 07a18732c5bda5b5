package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// TestAbruptExitStopsCluster: "Either way, shut the cluster down on exit"
// (issue 14). When the server dies without running its deferred calls (a
// SIGQUIT from Ctrl-\, a SIGKILL from a supervisor or the OOM killer), the
// throwaway cluster stops too: on Linux, pgtest gives postgres a
// parent-death signal. (Its temporary directory stays; elsewhere the cluster
// keeps running, as the example's doc says.)
func TestAbruptExitStopsCluster(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a parent-death signal exists on Linux only")
	}
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Skip(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe)
			cmd.Env = append(os.Environ(), "ROTOR_MCPSERVER_ARGS=-http 127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var printed strings.Builder
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				printed.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "pid ") {
					break
				}
			}
			alter := alterRE.FindStringSubmatch(printed.String())
			if alter == nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no cluster in the start-up text:\n%s", printed.String())
			}
			superURL := fmt.Sprintf("postgres://%s:%s@%s:%s/postgres?sslmode=disable", alter[4], alter[1], alter[2], alter[3])
			c, err := pgx.Connect(ctx, superURL)
			if err != nil {
				t.Fatal(err)
			}
			var dataDir string
			err = c.QueryRow(ctx, "show data_directory").Scan(&dataDir)
			c.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Whatever happens, stop the cluster this test made.
			defer func() {
				if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err == nil {
					// pg_ctl waits for the cluster to stop.
					_ = exec.Command(filepath.Join(bin, "pg_ctl"), "stop", "-D", dataDir, "-m", "immediate", "-w").Run()
				}
				os.RemoveAll(filepath.Dir(dataDir))
			}()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go func() {
				for sc.Scan() {
				}
			}()
			cmd.Wait()
			if c, err := pgx.Connect(ctx, superURL); err == nil {
				c.Close(ctx)
				t.Errorf("the throwaway cluster still runs after the server died of %v", sig)
			}
		})
	}
}
