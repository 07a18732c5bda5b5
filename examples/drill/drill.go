package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

// Strategies of rotation.
const (
	// SingleRole changes the password of the one role the server uses.
	SingleRole = "single-role"
	// DualRole alternates two roles: each rotation changes the password of
	// the role not in use and points the stored credential at it.
	DualRole = "dual-role"
)

// Orders of a manual rotation's two steps (the rotate program's -first flag).
const (
	StoreFirst = "store"
	AlterFirst = "alter"
)

// Who rotates.
const (
	// Manual rows rotate with the rotate program: the new password written
	// to db.json and set with ALTER ROLE by hand, with no overlap, as an
	// operator's script does.
	Manual = "manual"
	// Agent rows rotate with examples/rotator, the rotation agent
	// (secrets/rotate) as a command, run once a rotation as an operator or
	// a CronJob runs it: stage, set, verify, promote, wait the overlap,
	// revoke; roll back when verify fails.
	Agent = "agent"
)

// The servers compared.
const (
	// RotorServer is the example server keeping its credential current
	// with rotor.
	RotorServer = "rotor"
	// ReadOnceServer is the same server with -read-once: it reads the
	// credential at start-up and never again.
	ReadOnceServer = "read-once"
)

// A Row is one way of rotating: who rotates, which step first (manual
// rows), whether SIGHUP follows, and the strategy.
type Row struct {
	By       string // Manual or Agent; "" is Manual
	First    string // manual rows: StoreFirst or AlterFirst; "" for the agent
	SIGHUP   bool   // manual rows: sent after both steps; the agent's: sent on promotion (-sighup-pidfile)
	Strategy string // SingleRole or DualRole
	// VerifyFails, for an agent row with DualRole, makes the one rotation
	// of the row fail its verify: the standby role's VALID UNTIL is in
	// the past, so the new password is set but cannot log in, and the
	// rotator must roll back (exit status 3).
	VerifyFails bool
}

// agent reports whether the rotation agent rotates in this row.
func (r Row) agent() bool { return r.By == Agent }

// by names who rotates, for the table.
func (r Row) by() string {
	if r.agent() {
		return Agent
	}
	return Manual
}

// Attempts is how many rotations the row runs when rows run rotations
// each: one for the row whose verify fails, which rolls back.
func (r Row) Attempts(rotations int) int {
	if r.VerifyFails {
		return 1
	}
	return rotations
}

// String names the row for logs and errors.
func (r Row) String() string {
	if r.agent() {
		s := fmt.Sprintf("agent (examples/rotator) / SIGHUP %s / %s", yesNo(r.SIGHUP), r.Strategy)
		if r.VerifyFails {
			s += " / verify fails"
		}
		return s
	}
	order := "store, then ALTER ROLE"
	if r.First == AlterFirst {
		order = "ALTER ROLE, then store"
	}
	return fmt.Sprintf("%s / SIGHUP %s / %s", order, yesNo(r.SIGHUP), r.Strategy)
}

// Rows returns the eleven rows: the eight manual ones (both orders, with
// and without SIGHUP, both strategies), and three of the rotation agent:
// single role without SIGHUP (servers pick the new password up by polling
// or, between set and promotion, by trying the pending one after a refused
// login), alternating roles with SIGHUP on promotion, and alternating roles
// whose one rotation fails its verify and rolls back.
func Rows() []Row {
	var rows []Row
	for _, strategy := range []string{SingleRole, DualRole} {
		for _, first := range []string{StoreFirst, AlterFirst} {
			for _, hup := range []bool{false, true} {
				rows = append(rows, Row{By: Manual, First: first, SIGHUP: hup, Strategy: strategy})
			}
		}
	}
	return append(rows,
		Row{By: Agent, Strategy: SingleRole},
		Row{By: Agent, SIGHUP: true, Strategy: DualRole},
		Row{By: Agent, SIGHUP: true, Strategy: DualRole, VerifyFails: true},
	)
}

// Config sets the drill's load and schedule.
type Config struct {
	Rows      []Row
	Rotations int           // rotations in each row
	Gap       time.Duration // between a rotation's two steps
	// Spacing is the time from a rotation's end (the server showing the
	// new credential on a new session) to the next rotation.
	Spacing    time.Duration
	Rate       int           // steady tool calls a second to each server
	Burst      int           // concurrent calls in each burst
	BurstEvery time.Duration // time between bursts
	// IdleSessionTimeout is the roles' idle_session_timeout: PostgreSQL
	// ends the pool's spare connections between bursts.
	IdleSessionTimeout time.Duration
	TTL                time.Duration // the server's -ttl, and the agent's -ttl
	// AgentDeadline is the agent's -overlap-deadline: how long after a
	// promotion it waits at most for the old credential's sessions to end
	// (its -overlap is its default and minimum, 3 × TTL). The server's
	// pool keeps its busiest connections for minutes, so the agent's wait
	// usually ends at this deadline, and then it revokes.
	AgentDeadline time.Duration
	// AgentPoll is the agent's -poll: how often it counts those sessions.
	AgentPoll time.Duration
	Parallel  int       // passes (a row against one server) run at once
	Bin       string    // the directory Build built the programs into
	Log       io.Writer // progress; nil for none
	ServerLog bool      // copy the servers' logs to Log too
}

// DefaultConfig returns the configuration ./test.sh runs: every row, five
// rotations each (one for the row whose verify fails), 40 calls a second
// plus a burst of 8 every 3 seconds; the agent's overlap is 3 × the 2 s
// TTL and its deadline twice that.
func DefaultConfig() Config {
	return Config{
		Rows: Rows(), Rotations: 5, Gap: 2 * time.Second, Spacing: time.Second,
		Rate: 40, Burst: 8, BurstEvery: 3 * time.Second, IdleSessionTimeout: 1500 * time.Millisecond,
		TTL: 2 * time.Second, AgentDeadline: 12 * time.Second, AgentPoll: time.Second, Parallel: 4,
	}
}

func (c Config) serverLog() io.Writer {
	if c.ServerLog {
		return c.Log
	}
	return nil
}

// A Window is one rotation, from the rotator's start until the server shows
// the new credential in use on a session that logged in after ALTER ROLE (or,
// for the read-once server, that it can no longer log in). For a rotation
// that rolled back, until the server shows the current credential in use on
// a session that logged in after the rollback.
type Window struct {
	Start, End time.Time
	Rotation   wire.Rotation
	Evident    bool // the server showed it within the drill's bound
	// RolledBack is set for an agent's rotation that rolled back; Refused
	// is then the role of the credential whose verify failed, which the
	// server must never have used, and Rotation.Role the role that stays.
	RolledBack bool
	Refused    string
}

// Latency is the spread of tool-call durations.
type Latency struct {
	Calls    int
	P50, P99 time.Duration
}

// Result is one row's outcome against one server.
type Result struct {
	Row
	Server    string
	Calls     int64
	Failed    int64
	Unsent    int64 // steady calls the load could not send: the server fell behind
	Rotations int   // rotations done (for the agent: exit status 0)
	// RolledBack counts the agent's rotations that rolled back (exit
	// status 3).
	RolledBack int
	// ServedRefused counts the calls served as the role of a credential
	// whose verify failed, from that rotation on: the server used the
	// value the agent refused.
	ServedRefused int64
	// Problems is what the pass found wrong in the store or the database
	// after a rollback (db.json changed, a pending version left, the
	// current credential refused).
	Problems []string
	// Reconnections counts the database sessions that served calls beyond
	// the first: the pool logged in again that many times at least.
	Reconnections int
	Windows       []Window
	// In and Out are the calls that started inside a rotation window and
	// those that did not.
	In, Out  Latency
	FirstErr string
	// Failures lists, for each failed call, when it started relative to
	// the ALTER ROLE of the nearest rotation, and why it failed.
	Failures []string
	Elapsed  time.Duration

	in, out []time.Duration // the durations behind In and Out
}

// Run runs every row against rotor and the read-once server, cfg.Parallel
// passes at once, each with its own PostgreSQL server. Results come in the
// order of cfg.Rows, rotor's before the read-once server's; the agent's
// rows, whose rotations wait out an overlap, start first.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	var logMu sync.Mutex
	type job struct {
		i      int
		row    Row
		server string
	}
	var jobs []job
	for _, row := range cfg.Rows {
		for _, server := range []string{RotorServer, ReadOnceServer} {
			jobs = append(jobs, job{len(jobs), row, server})
		}
	}
	results := make([]Result, len(jobs))
	errs := make([]error, len(jobs))
	// The longest passes first, so that none is left to run alone at the end.
	order := slices.Clone(jobs)
	sort.SliceStable(order, func(a, b int) bool { return order[a].row.agent() && !order[b].row.agent() })
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for _, j := range order {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[j.i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p := &pass{cfg: cfg, row: j.row, server: j.server, logf: func(string, ...any) {}}
			if cfg.Log != nil {
				p.logf = func(format string, args ...any) {
					logMu.Lock()
					defer logMu.Unlock()
					fmt.Fprintf(cfg.Log, "%s  %s, %s: %s\n", time.Now().Format("15:04:05.000"), j.row, j.server, fmt.Sprintf(format, args...))
				}
			}
			p.logf("start")
			r, err := p.run(ctx)
			if err != nil {
				err = fmt.Errorf("%s, %s: %w", j.row, j.server, err)
			}
			p.logf("done: %d calls, %d failed", r.Calls, r.Failed)
			results[j.i], errs[j.i] = r, err
		})
	}
	wg.Wait()
	var all []error
	for _, err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		return results, fmt.Errorf("%d of %d passes did not finish: %w", len(all), len(jobs), all[0])
	}
	return results, nil
}

// tally counts the calls into r.
func (r *Result) tally(calls []wire.Call) {
	seen := map[session]bool{}
	var in, out []time.Duration
	for _, c := range calls {
		r.Calls++
		d := c.End.Sub(c.Start)
		if r.inWindow(c.Start) {
			in = append(in, d)
		} else {
			out = append(out, d)
		}
		if c.Err != "" {
			r.Failed++
			if r.FirstErr == "" {
				r.FirstErr = c.Err
			}
			r.Failures = append(r.Failures, r.describe(c))
			continue
		}
		seen[session{c.PID, c.SessionStart}] = true
		if r.servedRefused(c) {
			r.ServedRefused++
		}
	}
	r.Reconnections = max(len(seen)-1, 0)
	r.in, r.out = in, out
	r.In, r.Out = latency(in), latency(out)
}

// servedRefused reports whether c, a call that succeeded, ran as the role
// of a credential whose verify failed, at or after that rotation's start.
func (r *Result) servedRefused(c wire.Call) bool {
	for _, w := range r.Windows {
		if w.RolledBack && c.User == w.Refused && !c.Start.Before(w.Start) {
			return true
		}
	}
	return false
}

func (r *Result) inWindow(t time.Time) bool {
	for _, w := range r.Windows {
		if !t.Before(w.Start) && !t.After(w.End) {
			return true
		}
	}
	return false
}

// describe says when a failed call started, relative to the nearest ALTER
// ROLE, and why it failed.
func (r *Result) describe(c wire.Call) string {
	where := "no rotation"
	best := time.Duration(math.MaxInt64)
	for n, w := range r.Windows {
		d := c.Start.Sub(w.Rotation.Altered)
		if d.Abs() < best.Abs() {
			best = d
			where = fmt.Sprintf("rotation %d, ALTER ROLE %+.2fs", n+1, d.Seconds())
		}
	}
	kind := "steady"
	if c.Burst {
		kind = "burst"
	}
	return fmt.Sprintf("%s (%s call, %v): %s", where, kind, c.End.Sub(c.Start).Round(time.Millisecond), c.Err)
}

func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Latency{Calls: len(ds), P50: at(0.50), P99: at(0.99)}
}

// Table renders results: one line a row and server, with the latency of the
// calls inside rotation windows and outside them. "by" says who rotated
// (manual: the rotate program; agent: examples/rotator), "verify" whether
// the agent's verify was made to fail, "rolled back" how many of its
// rotations rolled back.
func Table(results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %-5s %-6s %-11s %-6s %-9s %6s %6s %9s %11s %13s %6s | %7s %7s %6s | %7s %7s %6s  %s\n",
		"by", "first", "SIGHUP", "strategy", "verify", "server", "calls", "failed", "rotations", "rolled back", "reconnections", "unsent",
		"in p50", "in p99", "in n", "out p50", "out p99", "out n", "first failure")
	for _, r := range results {
		first := r.FirstErr
		if len(first) > 70 {
			first = first[:70] + "..."
		}
		order, verify := r.First, "-"
		if r.agent() {
			order, verify = "-", "passes"
			if r.VerifyFails {
				verify = "fails"
			}
		}
		fmt.Fprintf(&b, "%-6s %-5s %-6s %-11s %-6s %-9s %6d %6d %9d %11d %13d %6d | %7s %7s %6d | %7s %7s %6d  %s\n",
			r.by(), order, yesNo(r.SIGHUP), r.Strategy, verify, r.Server, r.Calls, r.Failed, r.Rotations, r.RolledBack, r.Reconnections, r.Unsent,
			ms(r.In.P50), ms(r.In.P99), r.In.Calls, ms(r.Out.P50), ms(r.Out.P99), r.Out.Calls, first)
	}
	return b.String()
}

// Summary renders, for each server over every row, the calls, the failed
// ones, and the latency of the calls inside rotation windows and outside them.
func Summary(results []Result) string {
	var b strings.Builder
	for _, server := range []string{RotorServer, ReadOnceServer} {
		var calls, failed int64
		var in, out []time.Duration
		for _, r := range results {
			if r.Server == server {
				calls += r.Calls
				failed += r.Failed
				in = append(in, r.in...)
				out = append(out, r.out...)
			}
		}
		li, lo := latency(in), latency(out)
		fmt.Fprintf(&b, "%-9s %7d calls, %5d failed; in rotation windows p50 %s p99 %s (%d calls), outside p50 %s p99 %s (%d calls)\n",
			server, calls, failed, ms(li.P50), ms(li.P99), li.Calls, ms(lo.P50), ms(lo.P99), lo.Calls)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Check returns what is wrong with r, a pass of a configuration of
// rotations rotations a row: what happened, never how fast. Every pass ran
// all its rotations, and after each one the server logged in again: rotor
// on a session that started after ALTER ROLE with the new credential; the
// read-once server either so (the role it keeps was not the one changed) or
// by failing to log in. rotor failed no call; the read-once server failed
// some, or the drill did not test rotation. (The read-once server's
// reconnections count only the sessions that served calls: once its
// password is changed it has none.)
//
// In the agent's row whose verify fails, the one rotation rolled back and
// none was done; neither server ever served a call as the refused role;
// after the rollback both logged in again with the credential db.json
// still holds, and neither failed a call: the read-once server, which
// never reads db.json again, shows that the database accepts the current
// credential as before. The pass's own findings (Result.Problems: db.json
// unchanged, no pending version left, a login with db.json's credential)
// are reported too.
func Check(r Result, rotations int) []string {
	var problems []string
	want, wantRolledBack := rotations, 0
	if r.VerifyFails {
		want, wantRolledBack = 0, 1
	}
	if r.Rotations != want || r.RolledBack != wantRolledBack || len(r.Windows) != want+wantRolledBack {
		problems = append(problems, fmt.Sprintf("%d rotations done and %d rolled back (%d windows); want %d and %d",
			r.Rotations, r.RolledBack, len(r.Windows), want, wantRolledBack))
	}
	for n, w := range r.Windows {
		if !w.Evident {
			what := "no call was served on a session that logged in with the new credential of " + w.Rotation.Role
			switch {
			case w.RolledBack:
				what = "no call was served on a session that logged in after the rollback as " + w.Rotation.Role
			case r.Server == ReadOnceServer:
				what = "no new session and no failed call"
			}
			problems = append(problems, fmt.Sprintf("rotation %d: %s within %v", n+1, what, evidenceWait))
		}
	}
	if r.ServedRefused > 0 {
		problems = append(problems, fmt.Sprintf("%d calls were served as the role whose new credential failed its verify", r.ServedRefused))
	}
	problems = append(problems, r.Problems...)
	switch {
	case r.Server == RotorServer || r.VerifyFails:
		// Implied by the windows; said on its own for the table's column.
		if r.Reconnections < want+wantRolledBack {
			problems = append(problems, fmt.Sprintf("%d reconnections; want at least one a rotation", r.Reconnections))
		}
		if r.Failed > 0 {
			problems = append(problems, fmt.Sprintf("%d of %d calls failed:", r.Failed, r.Calls))
			for i, f := range r.Failures {
				if i == 10 {
					problems = append(problems, fmt.Sprintf("  and %d more", len(r.Failures)-i))
					break
				}
				problems = append(problems, "  "+f)
			}
		}
	case r.Server == ReadOnceServer:
		if r.Failed == 0 {
			problems = append(problems, "the read-once server failed no call: the drill did not test rotation")
		}
	}
	return problems
}
