package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
	"github.com/rotorhq/rotor/sources/memory"
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
// the same rotation schedule.
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
func (d *drill) pass(ctx context.Context, kind string) (Result, error) {
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

	var store *secrets.Store
	var credKey string
	if kind == rotorServer {
		// The credential is a JSON file the Store watches and polls,
		// validated by logging in before a swap, and reloaded on SIGHUP.
		files, err := file.New(file.WithDir(d.dir))
		if err != nil {
			return Result{}, err
		}
		credKey = "file://" + filepath.Join(d.dir, "db.json")
		logger := slog.New(slog.DiscardHandler)
		if cfg.Log != nil {
			logger = slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
		store, err = secrets.New(nil,
			secrets.WithSource("file", files),
			secrets.WithTTL(cfg.TTL),
			secrets.WithValidator(server.DBValidator(d.dbURL), credKey),
			secrets.WithOverlap(3*cfg.TTL+cfg.TTL/2),
			secrets.WithLogger(logger))
		if err != nil {
			return Result{}, err
		}
		stopSignals := secrets.ReloadOnSignal(ctx, store, syscall.SIGHUP)
		defer stopSignals()
	} else {
		// The baseline reads the credential once at start-up, as code
		// calling os.Getenv in main does; its Store never sees a change.
		raw, err := os.ReadFile(filepath.Join(d.dir, "db.json"))
		if err != nil {
			return Result{}, err
		}
		once := memory.New()
		once.Set("db", string(raw))
		credKey = "db"
		if store, err = secrets.New(once, secrets.WithTTL(24*time.Hour)); err != nil {
			return Result{}, err
		}
		// Signals go nowhere, but the process must not die of them.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}
	defer store.Close()

	srv, err := server.New(server.Config{
		Store: store, DatabaseURL: d.dbURL, DBCredKey: credKey, MaxConnLifetime: cfg.TTL,
	})
	if err != nil {
		return Result{}, err
	}
	defer srv.Close()
	url, stop, err := serve(srv.HTTPHandler(acceptDrillToken))
	if err != nil {
		return Result{}, err
	}
	defer stop()

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
			if role, rotErr = d.rotate(ctx, role, rotated, &revocations); rotErr != nil {
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
func (d *drill) rotate(ctx context.Context, role string, n int, revocations *sync.WaitGroup) (string, error) {
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
		d.signal()
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
		d.signal()
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

func (d *drill) signal() { _ = syscall.Kill(os.Getpid(), syscall.SIGHUP) }

// load calls the database tool at the configured rate until ctx ends.
func (d *drill) load(ctx context.Context, url string, r *Result) {
	client := mcp.NewClient(&mcp.Implementation{Name: "drill", Version: "v0"}, nil)
	httpClient := &http.Client{Transport: &bearer{token: drillToken, base: &http.Transport{MaxIdleConnsPerHost: d.cfg.Workers}}}
	defer httpClient.CloseIdleConnections()
	sessions := make([]*mcp.ClientSession, 4)
	for i := range sessions {
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: httpClient, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
		if err != nil {
			r.FirstErr = "connect: " + err.Error()
			r.Failed++
			return
		}
		defer cs.Close()
		sessions[i] = cs
	}
	var calls, failed atomic.Int64
	var mu sync.Mutex
	work := make(chan struct{}, 2*d.cfg.Rate) // absorbs stalls of up to two seconds
	var wg sync.WaitGroup
	for w := 0; w < d.cfg.Workers; w++ {
		wg.Add(1)
		go func(cs *mcp.ClientSession) {
			defer wg.Done()
			for range work {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "db_whoami"})
				cancel()
				calls.Add(1)
				if err == nil && res.IsError {
					err = errors.New(toolError(res))
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if r.FirstErr == "" {
						r.FirstErr = err.Error()
					}
				} else if out, ok := res.StructuredContent.(map[string]any); ok {
					if u, ok := out["user"].(string); ok {
						r.Roles[u]++
					}
				}
				mu.Unlock()
			}
		}(sessions[w%len(sessions)])
	}
	// Pace by elapsed time, so that a late tick is made up for and the
	// average rate is the one asked for.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var sent, dropped int64
pace:
	for {
		select {
		case <-ctx.Done():
			break pace
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(d.cfg.Rate))
			for ; sent < due; sent++ {
				select {
				case work <- struct{}{}:
				default:
					dropped++ // more than two seconds behind
				}
			}
		}
	}
	elapsed := time.Since(start)
	close(work)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	r.Calls = calls.Load()
	r.Unsent = dropped
	r.Elapsed = elapsed
	r.Failed += failed.Load()
}

func toolError(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return "tool error"
}

// serve runs h on a loopback port until stop is called.
func serve(h http.Handler) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	return "http://" + l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// The drill's bearer token: the drill is about the database credential, so
// the MCP endpoint accepts one fixed token (the example server itself verifies
// rotating JWTs; see examples/mcpserver).
const drillToken = "drill-token"

func acceptDrillToken(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	if token != drillToken {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{UserID: "drill", Expiration: time.Now().Add(time.Hour)}, nil
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
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
