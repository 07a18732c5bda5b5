package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/internal/pgtest"
)

// rotateRE finds, in the start-up text, the printed ALTER ROLE command's
// superuser password and port, and the file to edit.
var (
	alterRE = regexp.MustCompile(`PGPASSWORD=(\S+) \S+ -h (\S+) -p (\d+) -U (\S+) -d postgres -c "(ALTER ROLE rotor_demo PASSWORD '[^']+')"`)
	fileRE  = regexp.MustCompile(`printf '%s' '(\{[^']+\})' > (\S+db\.json)`)
)

// TestDemoDatabase: the default run starts a throwaway cluster, enables
// db_whoami, and prints how to rotate its password; doing what it prints,
// in one MCP session, keeps db_whoami working, a new database session logs
// in with the new password, and the cluster is gone after the run.
func TestDemoDatabase(t *testing.T) {
	if _, err := pgtest.BinDir(); err != nil {
		t.Fatalf("PostgreSQL is needed for this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, demoDB: true},
			slog.New(slog.DiscardHandler), out, ready)
	}()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		stopped = true
		t.Fatalf("run: %v\n%s", err, out)
	}
	printed := out.String()
	alter := alterRE.FindStringSubmatch(printed)
	edit := fileRE.FindStringSubmatch(printed)
	token := strings.TrimSpace(regexp.MustCompile(`(?m)^  (ey\S+)$`).FindString(printed))
	if alter == nil || edit == nil || token == "" || !strings.Contains(printed, "db_whoami: PostgreSQL, a throwaway cluster") {
		t.Fatalf("the start-up text does not say how to rotate the database password:\n%s", printed)
	}
	superURL := fmt.Sprintf("postgres://%s:%s@%s:%s/postgres?sslmode=disable", alter[4], alter[1], alter[2], alter[3])

	cs, err := connect(ctx, url, token)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	whoami := func() server.DBResult {
		t.Helper()
		var res *mcp.CallToolResult
		// A pooled connection whose session was ended fails once, with
		// 57P01, and leaves the pool; the pool opens at most a few.
		for i := 0; ; i++ {
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "db_whoami"})
			if err == nil && res.IsError && strings.Contains(toolText(res), "57P01") && i < 8 {
				continue
			}
			if err != nil || res.IsError {
				t.Fatalf("db_whoami: %v %+v", err, toolText(res))
			}
			break
		}
		var r server.DBResult
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &r); err != nil || r.User != "rotor_demo" {
			t.Fatalf("db_whoami answered %s (%v)", b, err)
		}
		return r
	}
	before := whoami()

	// Do what the start-up text says: ALTER ROLE, then the file.
	admin, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, alter[5]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edit[2]+".tmp", []byte(edit[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(edit[2]+".tmp", edit[2]); err != nil {
		t.Fatal(err)
	}
	// End the sessions that logged in with the old password: the next call
	// needs a new one, which logs in with whatever the Store then holds (a
	// call that meets the old one refreshes it and tries again; a call on a
	// connection whose session was ended fails with 57P01, which is the
	// pool's to handle, not rotor's).
	if _, err := admin.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'rotor_demo'"); err != nil {
		t.Fatal(err)
	}
	after := whoami()
	if after.PID == before.PID || !after.SessionStart.After(before.SessionStart) {
		t.Fatalf("db_whoami ran in the old session: before %+v, after %+v", before, after)
	}

	stop()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if c, err := pgx.Connect(ctx, superURL); err == nil {
		c.Close(ctx)
		t.Fatal("the throwaway cluster still runs after the server stopped")
	}
}

// TestSignalStopsCluster: SIGINT and SIGTERM stop the server and its
// throwaway cluster, whose files are removed.
func TestSignalStopsCluster(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
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
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go sc.Scan() // drain
			if err := cmd.Wait(); err != nil {
				t.Fatalf("the server exited with %v", err)
			}
			if c, err := pgx.Connect(ctx, superURL); err == nil {
				c.Close(ctx)
				t.Fatal("the throwaway cluster still runs")
			}
			if _, err := os.Stat(filepath.Dir(dataDir)); !os.IsNotExist(err) {
				t.Fatalf("the cluster's files are still there: %v", err)
			}
		})
	}
}

func toolText(res *mcp.CallToolResult) string {
	if res == nil {
		return "no result"
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
