package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The drill starts its servers by running this binary again.
	if cfg, ok := os.LookupEnv(serverEnv); ok {
		os.Exit(serveMain(cfg))
	}
	goleak.VerifyTestMain(m)
}

// TestDrill is the rotation drill at the figures: 200 tool calls a
// second to each server for 30 seconds while the password rotates 5 times,
// in both strategies. rotor must serve the rate and fail no call; the
// read-once baseline must fail some, or the drill proves nothing. (The
// baseline may also fall behind the rate: every call it makes after a
// rotation opens a connection that fails authentication. The table shows
// those calls as unsent.)
func TestDrill(t *testing.T) {
	const (
		rate     = 200
		duration = 30 * time.Second
	)
	var all []Result
	for _, strategy := range []string{DualUser, SingleUser} {
		t.Run(strategy, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := Run(ctx, Config{Strategy: strategy, Duration: duration, Rate: rate, Rotations: 5, TTL: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, res...)
			for _, r := range res {
				if r.Rotations != 5 {
					t.Errorf("%s: %d rotations, want 5", r.Server, r.Rotations)
				}
				switch r.Server {
				case rotorServer:
					if r.Rate() < rate*0.98 || r.Elapsed < duration*9/10 || r.Unsent > 0 {
						t.Errorf("rotor: %.1f calls/s over %v (%d unsent), want %d/s for %v", r.Rate(), r.Elapsed, r.Unsent, rate, duration)
					}
					if r.Failed != 0 {
						t.Errorf("rotor: %d of %d calls failed; first: %s", r.Failed, r.Calls, r.FirstErr)
					}
					if strategy == DualUser && (r.Roles["app_a"] == 0 || r.Roles["app_b"] == 0) {
						t.Errorf("rotor did not move between roles: %v", r.Roles)
					}
				case baselineServer:
					if r.Failed == 0 {
						t.Errorf("the read-once baseline failed no call: the drill did not test rotation")
					}
				}
			}
		})
	}
	t.Logf("\n%s", Table(all))
}

// TestServerProcess starts each kind of server as the drill does, with no
// database behind it (its database tool connects only when called): the
// server runs as a process of its own, serves MCP to a real client, lives
// through SIGHUP, and exits cleanly when the drill stops it.
func TestServerProcess(t *testing.T) {
	for _, kind := range []string{rotorServer, baselineServer} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "db.json"), []byte(`{"username":"app","password":"pw"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, err := startServer(ctx, serverConfig{
				Kind: kind, Dir: dir, DatabaseURL: "postgres://127.0.0.1:1/postgres?sslmode=disable", TTL: time.Hour,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					srv.stop()
				}
			}()
			hc := newHTTPClient(1)
			defer hc.CloseIdleConnections()
			cs, err := connect(ctx, srv.URL, hc)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			hasTool := func() {
				t.Helper()
				tools, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, tool := range tools.Tools {
					if tool.Name == "db_whoami" {
						return
					}
				}
				t.Fatalf("the server lists no db_whoami tool: %+v", tools.Tools)
			}
			hasTool()
			if err := srv.signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			hasTool()
			cs.Close()
			stopped = true
			// A server killed by the SIGHUP would be reported here.
			if err := srv.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
