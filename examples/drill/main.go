// Command drill rotates a PostgreSQL password under live MCP traffic and
// counts failed tool calls, for a server using rotor and for one that reads
// its password once at start-up, as code calling os.Getenv in main does.
//
// It starts its own PostgreSQL server on loopback (Debian's postgresql
// package must be installed), with password authentication, and runs the
// example MCP server (examples/mcpserver/server) over streamable HTTP as a
// process of its own, twice: once with a rotor Store watching the credential
// file and reloading on SIGHUP, once with the credential read at start-up.
// The drill is their client, through the MCP Go SDK, and rotates the
// credential from outside: it writes the file, changes the database and
// sends the server SIGHUP. Both servers get the same load and the same
// rotations, in two strategies:
//
//   - dual-user: two roles; each rotation sets a new password on the idle
//     one, ends the sessions that logged in with its old password, and
//     points the secret at it.
//   - single-user: one role; the secret gets the new password, the database
//     is changed, SIGHUP is sent, and the sessions opened with the old
//     password are ended after the overlap (3.5 TTLs).
//
// The drill checks that rotor fails no call, that calls were made before and
// after every rotation, and that some calls used each new credential; it
// prints the rate the machine reached, and what the baseline failed.
//
// Usage:
//
//	go run ./examples/drill [-duration 30s] [-rate 200] [-rotations 5] [-ttl 1s] [-strategy both]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	if cfg, ok := os.LookupEnv(serverEnv); ok {
		os.Exit(serveMain(cfg))
	}
	duration := flag.Duration("duration", 30*time.Second, "planned length of the load in each run")
	rate := flag.Int("rate", 200, "tool calls a second to each server")
	rotations := flag.Int("rotations", 5, "password rotations during each run")
	ttl := flag.Duration("ttl", time.Second, "the rotor Store's TTL")
	strategy := flag.String("strategy", "both", "dual-user, single-user or both")
	verbose := flag.Bool("v", false, "log rotations and the servers' events")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	strategies := []string{DualUser, SingleUser}
	if *strategy != "both" {
		strategies = []string{*strategy}
	}
	var all []Result
	for _, s := range strategies {
		cfg := Config{Strategy: s, Duration: *duration, Rate: *rate, Rotations: *rotations, TTL: *ttl}
		if *verbose {
			cfg.Log = os.Stderr
		}
		fmt.Fprintf(os.Stderr, "drill: %s, %v at %d calls/s per server, %d rotations\n", s, *duration, *rate, *rotations)
		res, err := Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "drill:", err)
			os.Exit(2)
		}
		all = append(all, res...)
	}
	fmt.Print(Table(all))
	for _, r := range all {
		if r.Server == rotorServer && (r.Failed > 0 || r.LeastUsed() == 0) {
			os.Exit(1)
		}
	}
}
