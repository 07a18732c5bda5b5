// Command drill rotates a PostgreSQL password under live MCP traffic, from
// outside the server, and counts the tool calls that fail: for the example
// server (examples/mcpserver) keeping its credential current with rotor, and
// for the same server with -read-once, which reads it at start-up as code
// calling os.Getenv in main does.
//
// It runs as users run these things. It builds four programs with the go
// command: the example server; mcpload, an MCP client on the official MCP Go
// SDK that calls the server's db_whoami tool over streamable HTTP; rotate,
// which changes a role's password by hand with no overlap; and
// examples/rotator, the rotation agent. For each row it starts a PostgreSQL
// server of its own (Debian's postgresql package must be installed), the
// example server as a process with -secrets and -db, and the load client as
// another process, and then rotates five times. The database roles carry
// idle_session_timeout and the load sends a burst of concurrent calls every
// 3 s, so the server's pool keeps logging in again, reading the password at
// each login.
//
// The manual rows run rotate for each rotation: it writes the new password
// to the server's db.json and runs ALTER ROLE, 2 s apart, in one order or
// the other, and then sends the server SIGHUP or not. They are both orders,
// with and without SIGHUP, for two strategies:
//
//   - single-role: the password of the role the server uses changes;
//   - dual-role: two roles alternate; each rotation changes the password of
//     the one not in use and points the stored credential at it.
//
// The agent rows run examples/rotator once for each rotation, one-shot, as
// an operator or a CronJob runs it: with -ttl the server's TTL (its overlap
// is then its minimum, 3 × TTL: 6 s), -overlap-deadline 12s and -poll 1s:
// each rotation stages, sets, verifies and promotes the new password, waits
// out the overlap and, as the server's pool keeps its busiest connections
// for minutes, mostly until the deadline, and revokes the old one. There are
// three: single role without SIGHUP (the role changes its own password; the
// server picks the new one up by polling, or by trying the pending one after
// a refused login), alternating roles (-roles app_a,app_b, with
// ROTOR_ADMIN_DSN) with SIGHUP sent on promotion to the PID in a PID file
// (-sighup-pidfile), and alternating roles whose one rotation fails its
// verify: the standby role's VALID UNTIL is in the past, so ALTER ROLE gives
// it the new password but a login with it is refused, and the agent must
// roll back (exit status 3). Each rotation must exit 0, and the rolled-back
// one 3, with db.json as it was, no pending version left beside it, and a
// login with its credential accepted by the database.
//
// A rotation is over when a call is served on a database session that
// logged in after ALTER ROLE with the new credential (for the read-once
// server: when it can no longer log in, or a new session shows the role it
// keeps is untouched); a rollback, when a session that logged in after it
// serves a call as the role that stays. The drill waits for that, never for
// a time it hopes is long enough. It prints, for each row and server, who
// rotated (manual or agent), the calls, the failed ones, the rotations done
// and rolled back, the reconnections, and the p50 and p99 of the calls
// inside rotation windows and outside them. It exits 1 when a rotor row
// failed a call or missed a check, when a server was served the credential
// whose verify failed, or when either server failed a call in the row that
// rolled back.
//
// Usage, from within the module:
//
//	go run ./examples/drill [-rows all] [-rotations 5] [-rate 40] [-parallel 4] [-v]
//	go run ./examples/drill -rows agent/no/single-role,agent/yes/dual-role,agent/yes/dual-role/verify-fails -v
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
	rows := flag.String("rows", "all", "all, or a comma-separated list of rows as first/sighup/strategy, e.g. store/no/single-role,alter/yes/dual-role, or agent/sighup/strategy[/verify-fails], e.g. agent/no/single-role,agent/yes/dual-role/verify-fails")
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

// parseRows reads rows written as first/sighup/strategy (manual rows) or
// agent/sighup/strategy, with /verify-fails after dual-role for the agent's
// row whose verify fails.
func parseRows(s string) ([]Row, error) {
	var rows []Row
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(f, "/")
		fails := len(parts) == 4 && parts[0] == Agent && parts[2] == DualRole && parts[3] == "verify-fails"
		if (len(parts) != 3 && !fails) || (parts[0] != StoreFirst && parts[0] != AlterFirst && parts[0] != Agent) ||
			(parts[1] != "yes" && parts[1] != "no") || (parts[2] != SingleRole && parts[2] != DualRole) {
			return nil, fmt.Errorf("row %q: want first/sighup/strategy, e.g. store/no/single-role, or agent/sighup/strategy, e.g. agent/yes/dual-role or agent/yes/dual-role/verify-fails", f)
		}
		row := Row{By: Manual, First: parts[0], SIGHUP: parts[1] == "yes", Strategy: parts[2], VerifyFails: fails}
		if parts[0] == Agent {
			row.By, row.First = Agent, ""
		}
		rows = append(rows, row)
	}
	return rows, nil
}
