package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// Strategies of rotation the drill runs.
const (
	// DualUser alternates two database roles: each rotation sets a new
	// password on the role not in use, ends that role's sessions (they
	// logged in with the password it replaces) and points the secret at
	// it. The role it points away from keeps working until the next
	// rotation, at least the overlap later.
	DualUser = "dual-user"
	// SingleUser rotates one role's password: the secret gets the new
	// password, the database is changed, SIGHUP is sent, and the sessions
	// opened with the old password are ended after the overlap.
	SingleUser = "single-user"
)

// Config sets the drill's load and schedule.
type Config struct {
	Strategy string
	// Duration is the planned length of the load: the rotations are due
	// every Duration/(Rotations+1). A rotation waits, besides, until the
	// load has shown what the drill checks (see Window), until a TTL has
	// passed since the previous one ended, and, in the dual-user strategy,
	// until the overlap has passed since the previous one; the single-user
	// strategy's rotations last the overlap.
	Duration  time.Duration
	Rate      int           // tool calls a second to each server, as far as the machine allows
	Rotations int           // rotations during the run
	TTL       time.Duration // the rotor Store's TTL; the overlap is 3.5 TTLs
	Workers   int           // concurrent callers per server
	Log       io.Writer     // progress and the servers' logs; nil for none
}

// Result is one server's outcome.
type Result struct {
	Strategy  string
	Server    string
	Calls     int64
	Failed    int64
	Rotations int
	FirstErr  string
	Unsent    int64            // calls the load could not send: the server fell too far behind
	Elapsed   time.Duration    // how long load ran
	Roles     map[string]int64 // successful calls by the role they ran as
	// Windows[n] is the load after rotation n (Windows[0]: before the
	// first), ending where the next rotation begins.
	Windows []Window
	// Revoked is the first window in which the credential the servers
	// started with no longer works: 1 in the single-user strategy, 2 in
	// the dual-user one (the first rotation leaves the start-up role alone).
	Revoked int
}

const (
	rotorServer    = "rotor"
	baselineServer = "read-once"
)

// evidenceWait bounds how long after its due time a rotation waits for the
// load to show what the drill checks; it only turns a server that never
// shows it into a failed check instead of a drill that never ends.
const evidenceWait = time.Minute

// drill holds one pass's moving parts.
type drill struct {
	cfg   Config
	kind  string
	pg    *pgtest.Server
	admin *pgx.Conn
	dir   string
	dbURL string // without credentials
	logf  func(format string, args ...any)
}

// Run runs one strategy twice, each time against a new PostgreSQL server:
// once with rotor, once with the read-once baseline, under the same load and
// the same rotations. Each server runs as a process of its own.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Strategy != DualUser && cfg.Strategy != SingleUser {
		return nil, fmt.Errorf("unknown strategy %q", cfg.Strategy)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	var out []Result
	for _, kind := range []string{rotorServer, baselineServer} {
		d := &drill{cfg: cfg, kind: kind, logf: func(string, ...any) {}}
		if cfg.Log != nil {
			d.logf = func(format string, args ...any) {
				fmt.Fprintf(cfg.Log, "%s  %s: %s\n", time.Now().Format("15:04:05.000"), kind, fmt.Sprintf(format, args...))
			}
		}
		r, err := d.pass(ctx)
		if err != nil {
			return out, fmt.Errorf("%s: %w", kind, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// pass runs the load and the rotations against one server.
func (d *drill) pass(ctx context.Context) (res Result, err error) {
	cfg := d.cfg
	pg, err := pgtest.StartServer(ctx)
	if err != nil {
		return Result{}, err
	}
	defer pg.Stop()
	d.pg = pg
	d.dbURL = fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", pg.Host, pg.Port)
	if d.admin, err = pgx.Connect(ctx, pg.SuperURL()); err != nil {
		return Result{}, err
	}
	defer d.admin.Close(context.Background())
	if d.dir, err = os.MkdirTemp("", "rotor-drill-"); err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(d.dir)

	first := newPassword()
	for _, role := range []string{"app_a", "app_b"} {
		if _, err := d.admin.Exec(ctx, fmt.Sprintf("create role %s login password '%s'", role, newPassword())); err != nil {
			return Result{}, err
		}
	}
	if _, err := d.setPassword(ctx, "app_a", first); err != nil {
		return Result{}, err
	}
	if err := d.writeSecret("app_a", first); err != nil {
		return Result{}, err
	}

	srv, err := startServer(ctx, serverConfig{
		Kind: d.kind, Dir: d.dir, DatabaseURL: d.dbURL, TTL: cfg.TTL, Verbose: cfg.Log != nil,
	}, cfg.Log)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if serr := srv.stop(); err == nil {
			err = serr
		}
	}()

	role := "app_a"
	l := newLoad(srv.URL, cfg.Rate, cfg.Workers, role)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(loadCtx)
	}()

	every := cfg.Duration / time.Duration(cfg.Rotations+1)
	start := time.Now()
	rotated := 0
	err = d.await(ctx, l, 0, start.Add(every), loadDone)
	for n := 1; err == nil && n <= cfg.Rotations; n++ {
		l.closeWindow()
		var at time.Time
		if role, at, err = d.rotate(ctx, srv, role, n); err != nil {
			err = fmt.Errorf("rotation %d: %w", n, err)
			break
		}
		rotated = n
		l.openWindow(role)
		// A window lasts at least a TTL, the servers' connection
		// lifetime: the load then runs on connections the server
		// opened with the new credential, not just on the first one.
		due := later(start.Add(time.Duration(n+1)*every), time.Now().Add(cfg.TTL))
		if cfg.Strategy == DualUser {
			// The next rotation revokes the role this one pointed
			// away from: not before the overlap has passed.
			due = later(due, at.Add(overlap(cfg.TTL)))
		}
		err = d.await(ctx, l, n, due, loadDone)
	}
	stopLoad()
	<-loadDone
	if err != nil {
		return Result{}, err
	}
	res = Result{Strategy: cfg.Strategy, Server: d.kind, Rotations: rotated, Revoked: 1}
	if cfg.Strategy == DualUser {
		res.Revoked = 2
	}
	l.result(&res)
	return res, ctx.Err()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// await waits until due, and until window n shows what the drill checks: a
// call that used credential n for rotor, a completed call for the baseline
// (whose calls fail once its credential is revoked). It gives up
// evidenceWait after due, leaving the checks to report what is missing.
func (d *drill) await(ctx context.Context, l *load, n int, due time.Time, loadDone <-chan struct{}) error {
	enough := func(w Window) bool { return w.Calls > 0 }
	if d.kind == rotorServer {
		enough = func(w Window) bool { return w.Used > 0 }
	}
	wait := time.NewTimer(time.Until(due))
	defer wait.Stop()
	giveUp := time.NewTimer(time.Until(due) + evidenceWait)
	defer giveUp.Stop()
	reached := false
	for {
		if reached && enough(l.window(n)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-loadDone:
			var r Result
			l.result(&r)
			return fmt.Errorf("the load stopped: %s", r.FirstErr)
		case <-giveUp.C:
			d.logf("window %d: %+v after %v", n, l.window(n), evidenceWait)
			return nil
		case <-wait.C:
			reached = true
		case <-l.progress:
		}
	}
}

// rotate performs rotation n. It returns the role whose password is now the
// one in the secret, and when the secret changed.
func (d *drill) rotate(ctx context.Context, srv *serverProcess, role string, n int) (string, time.Time, error) {
	pw := newPassword()
	switch d.cfg.Strategy {
	case DualUser:
		next := map[string]string{"app_a": "app_b", "app_b": "app_a"}[role]
		changed, err := d.setPassword(ctx, next, pw)
		if err != nil {
			return role, time.Time{}, err
		}
		ended, err := d.endSessions(ctx, next, changed)
		if err != nil {
			return role, time.Time{}, err
		}
		if err := d.writeSecret(next, pw); err != nil {
			return role, time.Time{}, err
		}
		at := time.Now()
		if err := srv.signal(syscall.SIGHUP); err != nil {
			return role, time.Time{}, err
		}
		d.logf("rotation %d: %s has a new password (%d sessions with its old one ended) and is the one in the secret", n, next, ended)
		return next, at, nil
	default:
		// The secret first: the Store tries it, the database refuses it,
		// and the validator keeps the old one in service.
		if err := d.writeSecret(role, pw); err != nil {
			return role, time.Time{}, err
		}
		at := time.Now()
		changed, err := d.setPassword(ctx, role, pw)
		if err != nil {
			return role, time.Time{}, err
		}
		if err := srv.signal(syscall.SIGHUP); err != nil {
			return role, time.Time{}, err
		}
		d.logf("rotation %d: %s has a new password; old sessions end in %v", n, role, overlap(d.cfg.TTL))
		t := time.NewTimer(overlap(d.cfg.TTL))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return role, time.Time{}, ctx.Err()
		case <-t.C:
		}
		ended, err := d.endSessions(ctx, role, changed)
		if err != nil {
			return role, time.Time{}, err
		}
		d.logf("rotation %d: ended %d sessions opened with the old password", n, ended)
		return role, at, nil
	}
}

// setPassword sets role's password and returns the database's time once the
// change is committed: a session that starts later logs in with pw.
func (d *drill) setPassword(ctx context.Context, role, pw string) (time.Time, error) {
	if _, err := d.admin.Exec(ctx, fmt.Sprintf("alter role %s password '%s'", role, pw)); err != nil {
		return time.Time{}, err
	}
	var now time.Time
	err := d.admin.QueryRow(ctx, "select clock_timestamp()").Scan(&now)
	return now, err
}

// endSessions ends the sessions of role that started no later than before,
// and waits until they have ended. A session that was still logging in when
// it was first listed (its user name not yet set) shows up on a later pass,
// so the sessions are listed and ended until none is left.
func (d *drill) endSessions(ctx context.Context, role string, before time.Time) (int, error) {
	const old = "from pg_stat_activity where usename = $1 and backend_start <= $2"
	ended := 0
	for pass := 0; pass < 20; pass++ {
		rows, err := d.admin.Query(ctx, "select pid "+old, role, before)
		if err != nil {
			return 0, err
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return 0, err
		}
		if len(pids) == 0 {
			return ended, nil
		}
		for _, pid := range pids {
			// Waits for the session to end (false if it already had).
			if _, err := d.admin.Exec(ctx, "select pg_terminate_backend($1, 30000)", pid); err != nil {
				return 0, err
			}
		}
		ended += len(pids)
	}
	var left int
	if err := d.admin.QueryRow(ctx, "select count(*) "+old, role, before).Scan(&left); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%d sessions of %s did not end", left, role)
}

// writeSecret replaces db.json atomically, as a secret volume is updated.
func (d *drill) writeSecret(user, pw string) error {
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	tmp := filepath.Join(d.dir, ".db.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.dir, "db.json"))
}

func newPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Table renders results as a table. "least used" is the fewest calls that
// succeeded with any one credential, the start-up one or a rotation's, in
// the window after it took effect; "failed after revoke" counts the calls
// that failed from the first window in which the start-up credential no
// longer works.
func Table(results []Result) string {
	sort.SliceStable(results, func(i, j int) bool {
		if results[i].Strategy != results[j].Strategy {
			return results[i].Strategy < results[j].Strategy
		}
		return results[i].Server > results[j].Server
	})
	s := fmt.Sprintf("%-12s %-10s %9s %7s %8s %7s %7s %10s %19s  %s\n",
		"strategy", "server", "rotations", "calls", "calls/s", "unsent", "failed", "least used", "failed after revoke", "first failure")
	for _, r := range results {
		first := r.FirstErr
		if len(first) > 60 {
			first = first[:60] + "..."
		}
		s += fmt.Sprintf("%-12s %-10s %9d %7d %8.1f %7d %7d %10d %19d  %s\n",
			r.Strategy, r.Server, r.Rotations, r.Calls, r.Rate(), r.Unsent, r.Failed, r.LeastUsed(), r.FailedFrom(r.Revoked), first)
	}
	return s
}

// Rate returns the calls a second the load made.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Elapsed.Seconds()
}

// LeastUsed returns the fewest calls that used any one credential in its
// window.
func (r Result) LeastUsed() int64 {
	if len(r.Windows) == 0 {
		return 0
	}
	least := r.Windows[0].Used
	for _, w := range r.Windows[1:] {
		least = min(least, w.Used)
	}
	return least
}

// FailedFrom returns the calls that failed in window n and those after it.
func (r Result) FailedFrom(n int) int64 {
	var failed int64
	for i := n; i < len(r.Windows); i++ {
		failed += r.Windows[i].Failed
	}
	return failed
}
