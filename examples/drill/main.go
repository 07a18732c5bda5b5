// Command drill rotates a PostgreSQL password under live MCP traffic, from
// outside the server, and counts the tool calls that fail: for the example
// server (examples/mcpserver) keeping its credential current with rotor, and
// for the same server with -read-once, which reads it at start-up as code
// calling os.Getenv in main does.
//
// It runs as users run these things. It builds three programs with the go
// command: the example server; mcpload, an MCP client on the official MCP Go
// SDK that calls the server's db_whoami tool over streamable HTTP; and
// rotate, which changes a role's password with no overlap. For each row it
// starts a PostgreSQL server of its own (Debian's postgresql package must be
// installed), the example server as a process with -secrets and -db, and the
// load client as another process, and then runs the rotator five times. Each
// rotation writes the new password to the server's db.json and runs ALTER
// ROLE, 2 s apart, in one order or the other, and then sends the server
// SIGHUP or not. The database roles carry idle_session_timeout and the load
// sends a burst of concurrent calls every 3 s, so the server's pool keeps
// logging in again, reading the password at each login.
//
// The rows are both orders, with and without SIGHUP, for two strategies:
//
//   - single-role: the password of the role the server uses changes;
//   - dual-role: two roles alternate; each rotation changes the password of
//     the one not in use and points the stored credential at it.
//
// A rotation is over when a call is served on a database session that
// logged in after ALTER ROLE with the new credential (for the read-once
// server: when it can no longer log in, or a new session shows the role it
// keeps is untouched). The drill waits for that, never for a time it hopes is
// long enough. It prints, for each row and server, the calls, the failed
// ones, the rotations, the reconnections, and the p50 and p99 of the calls
// inside rotation windows and outside them. It exits 1 when a rotor row
// failed a call or missed a check.
//
// Usage, from within the module:
//
//	go run ./examples/drill [-rows all] [-rotations 5] [-rate 40] [-parallel 4] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	cfg := DefaultConfig()
	rows := flag.String("rows", "all", "all, or a comma-separated list of rows as first/sighup/strategy, e.g. store/no/single-role,alter/yes/dual-role")
	flag.IntVar(&cfg.Rotations, "rotations", cfg.Rotations, "rotations in each row")
	flag.IntVar(&cfg.Rate, "rate", cfg.Rate, "steady tool calls a second to each server")
	flag.IntVar(&cfg.Burst, "burst", cfg.Burst, "concurrent calls in each burst")
	flag.DurationVar(&cfg.BurstEvery, "burst-every", cfg.BurstEvery, "time between bursts")
	flag.DurationVar(&cfg.Gap, "gap", cfg.Gap, "time between a rotation's two steps")
	flag.DurationVar(&cfg.TTL, "ttl", cfg.TTL, "the server's -ttl")
	flag.IntVar(&cfg.Parallel, "parallel", cfg.Parallel, "passes (a row against one server) run at once")
	verbose := flag.Bool("v", false, "log progress to standard error")
	serverLog := flag.Bool("server-log", false, "with -v, copy the servers' logs too")
	flag.Parse()
	if *rows != "all" {
		var err error
		if cfg.Rows, err = parseRows(*rows); err != nil {
			fmt.Fprintln(os.Stderr, "drill:", err)
			os.Exit(2)
		}
	}
	if *verbose {
		cfg.Log = os.Stderr
		cfg.ServerLog = *serverLog
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := os.MkdirTemp("", "drill-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		os.Exit(2)
	}
	defer os.RemoveAll(bin)
	cfg.Bin = bin
	code := run(ctx, cfg)
	os.RemoveAll(bin)
	os.Exit(code)
}

func run(ctx context.Context, cfg Config) int {
	if err := Build(ctx, cfg.Bin); err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		return 2
	}
	start := time.Now()
	res, err := Run(ctx, cfg)
	fmt.Print(Table(res))
	fmt.Print(Summary(res))
	fmt.Printf("%d rows in %v\n", len(cfg.Rows), time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		return 2
	}
	code := 0
	for _, r := range res {
		if problems := Check(r, cfg.Rotations); len(problems) > 0 {
			code = 1
			for _, p := range problems {
				fmt.Fprintf(os.Stderr, "%s, %s: %s\n", r.Row, r.Server, p)
			}
		}
	}
	return code
}

// parseRows reads rows written as first/sighup/strategy.
func parseRows(s string) ([]Row, error) {
	var rows []Row
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(f, "/")
		if len(parts) != 3 || (parts[0] != StoreFirst && parts[0] != AlterFirst) ||
			(parts[1] != "yes" && parts[1] != "no") || (parts[2] != SingleRole && parts[2] != DualRole) {
			return nil, fmt.Errorf("row %q: want first/sighup/strategy, e.g. store/no/single-role", f)
		}
		rows = append(rows, Row{First: parts[0], SIGHUP: parts[1] == "yes", Strategy: parts[2]})
	}
	return rows, nil
}
