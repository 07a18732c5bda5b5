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
// second to each server, five rotations over 30 seconds, in both strategies.
// It checks behaviour, never the machine's speed: rotor fails no call, every
// rotation happens under load (calls complete before and after it, and some
// calls use the new credential), and the read-once baseline fails calls once
// its credential is revoked. The rate reached is printed, not checked.
func TestDrill(t *testing.T) {
	const (
		rate      = 200
		duration  = 30 * time.Second
		rotations = 5
	)
	var all []Result
	for _, strategy := range []string{DualUser, SingleUser} {
		t.Run(strategy, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			res, err := Run(ctx, Config{Strategy: strategy, Duration: duration, Rate: rate, Rotations: rotations, TTL: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, res...)
			for _, r := range res {
				if r.Rotations != rotations || len(r.Windows) != rotations+1 {
					t.Fatalf("%s: %d rotations, %d windows; want %d and %d", r.Server, r.Rotations, len(r.Windows), rotations, rotations+1)
				}
				// Calls before and after each rotation: window n-1
				// ends where rotation n begins, window n starts
				// where it ends.
				for n, w := range r.Windows {
					if w.Calls == 0 {
						t.Errorf("%s: no call completed in window %d, between rotation %d (0: the start) and the next", r.Server, n, n)
					}
				}
				t.Logf("%s: %d calls at %.1f/s (asked for %d/s), %d unsent, %d failed", r.Server, r.Calls, r.Rate(), rate, r.Unsent, r.Failed)
				switch r.Server {
				case rotorServer:
					if r.Failed != 0 {
						t.Errorf("rotor: %d of %d calls failed; first: %s", r.Failed, r.Calls, r.FirstErr)
					}
					for n, w := range r.Windows {
						if w.Used == 0 {
							t.Errorf("rotor: no call used credential %d (role %s) in the window after it took effect: %+v", n, w.Role, w)
						}
					}
				case baselineServer:
					// Once its credential is revoked, every session it
					// had is ended and every login it tries is refused.
					if r.FailedFrom(r.Revoked) == 0 {
						t.Errorf("the read-once baseline failed no call after its credential was revoked (window %d): the drill did not test rotation; windows %+v", r.Revoked, r.Windows)
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
