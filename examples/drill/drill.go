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
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// Strategies of rotation the drill runs.
const (
	// DualUser alternates two database roles: each rotation sets a new
	// password on the role not in use and points the secret at it, so both
	// stay valid through the overlap.
	DualUser = "dual-user"
	// SingleUser rotates one role's password: the secret gets the new
	// password, the database is changed, SIGHUP is sent, and sessions opened
	// before the rotation are terminated three TTLs later.
	SingleUser = "single-user"
)

// Config sets the drill's load and schedule.
type Config struct {
	Strategy  string
	Duration  time.Duration // how long load runs
	Rate      int           // tool calls a second, to each server
	Rotations int           // rotations during the run
	TTL       time.Duration // the rotor Store's TTL
	Workers   int           // concurrent callers per server
	Log       io.Writer     // progress; nil for none
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
}

const (
	rotorServer    = "rotor"
	baselineServer = "read-once"
)

// drill holds one pass's moving parts.
type drill struct {
	cfg   Config
	pg    *pgtest.Server
	admin *pgx.Conn
	dir   string
	dbURL string // without credentials
	logf  func(format string, args ...any)
}

// Run runs one strategy twice, each time against a new PostgreSQL server:
// once with rotor, once with the read-once baseline, under the same load and
// the same rotation schedule. Each server runs as a process of its own.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Strategy != DualUser && cfg.Strategy != SingleUser {
		return nil, fmt.Errorf("unknown strategy %q", cfg.Strategy)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	var out []Result
	for _, kind := range []string{rotorServer, baselineServer} {
		d := &drill{cfg: cfg, logf: func(string, ...any) {}}
		if cfg.Log != nil {
			d.logf = func(format string, args ...any) {
				fmt.Fprintf(cfg.Log, "%s  %s: %s\n", time.Now().Format("15:04:05.000"), kind, fmt.Sprintf(format, args...))
			}
		}
		r, err := d.pass(ctx, kind)
		if err != nil {
			return out, fmt.Errorf("%s: %w", kind, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// pass runs the load and the rotations against one server.
func (d *drill) pass(ctx context.Context, kind string) (res Result, err error) {
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
	if err := d.setPassword(ctx, "app_a", first); err != nil {
		return Result{}, err
	}
	if err := d.writeSecret("app_a", first); err != nil {
		return Result{}, err
	}

	srv, err := startServer(ctx, serverConfig{
		Kind: kind, Dir: d.dir, DatabaseURL: d.dbURL, TTL: cfg.TTL, Verbose: cfg.Log != nil,
	}, cfg.Log)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if serr := srv.stop(); err == nil {
			err = serr
		}
	}()
	url := srv.URL

	result := &Result{Strategy: cfg.Strategy, Server: kind, Roles: map[string]int64{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		d.load(loadCtx, url, result)
	}()

	// Rotate at even intervals, leaving time after the last one.
	every := cfg.Duration / time.Duration(cfg.Rotations+1)
	rotated := 0
	var revocations sync.WaitGroup
	ticker := time.NewTicker(every)
	deadline := time.NewTimer(cfg.Duration)
	defer deadline.Stop()
	role := "app_a"
	var rotErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline.C:
			break loop
		case <-ticker.C:
			if rotated == cfg.Rotations {
				continue
			}
			rotated++
			if role, rotErr = d.rotate(ctx, srv, role, rotated, &revocations); rotErr != nil {
				break loop
			}
		}
	}
	ticker.Stop()
	stopLoad()
	<-loadDone
	revocations.Wait()
	if rotErr != nil {
		return Result{}, fmt.Errorf("rotation %d: %w", rotated, rotErr)
	}
	result.Rotations = rotated
	return *result, ctx.Err()
}

// rotate performs one rotation and returns the role now in use.
func (d *drill) rotate(ctx context.Context, srv *serverProcess, role string, n int, revocations *sync.WaitGroup) (string, error) {
	pw := newPassword()
	switch d.cfg.Strategy {
	case DualUser:
		next := map[string]string{"app_a": "app_b", "app_b": "app_a"}[role]
		if err := d.setPassword(ctx, next, pw); err != nil {
			return role, err
		}
		if err := d.writeSecret(next, pw); err != nil {
			return role, err
		}
		if err := srv.signal(syscall.SIGHUP); err != nil {
			return role, err
		}
		d.logf("rotation %d: %s now has a new password and is the one in the secret", n, next)
		return next, nil
	default:
		// The secret first: the Store tries it, the database refuses it,
		// and the validator keeps the old one in service.
		if err := d.writeSecret(role, pw); err != nil {
			return role, err
		}
		changed := time.Now()
		if err := d.setPassword(ctx, role, pw); err != nil {
			return role, err
		}
		if err := srv.signal(syscall.SIGHUP); err != nil {
			return role, err
		}
		d.logf("rotation %d: %s has a new password; old sessions end in %v", n, role, 3*d.cfg.TTL)
		revocations.Add(1)
		go func() {
			defer revocations.Done()
			t := time.NewTimer(3 * d.cfg.TTL)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			conn, err := pgx.Connect(ctx, d.pg.SuperURL())
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			var killed int
			err = conn.QueryRow(ctx,
				"select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = $1 and backend_start < $2",
				role, changed).Scan(&killed)
			if err == nil {
				d.logf("rotation %d: terminated %d sessions opened with the old password", n, killed)
			}
		}()
		return role, nil
	}
}

func (d *drill) setPassword(ctx context.Context, role, pw string) error {
	_, err := d.admin.Exec(ctx, fmt.Sprintf("alter role %s password '%s'", role, pw))
	return err
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

// Table renders results as a table.
func Table(results []Result) string {
	sort.SliceStable(results, func(i, j int) bool {
		if results[i].Strategy != results[j].Strategy {
			return results[i].Strategy < results[j].Strategy
		}
		return results[i].Server > results[j].Server
	})
	s := fmt.Sprintf("%-12s %-10s %9s %7s %8s %7s %7s  %s\n", "strategy", "server", "rotations", "calls", "calls/s", "unsent", "failed", "first failure")
	for _, r := range results {
		first := r.FirstErr
		if len(first) > 60 {
			first = first[:60] + "..."
		}
		s += fmt.Sprintf("%-12s %-10s %9d %7d %8.1f %7d %7d  %s\n", r.Strategy, r.Server, r.Rotations, r.Calls, r.Rate(), r.Unsent, r.Failed, first)
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
