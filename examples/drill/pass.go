package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
	"github.com/rotorhq/rotor/internal/pgtest"
)

// evidenceWait bounds how long the drill waits for what a step must show (a
// session logged in with the new password, the first calls); it only turns a
// server that never shows it into a failed check instead of a drill that
// never ends.
const evidenceWait = 45 * time.Second

// pass is one row run against one kind of server, on a PostgreSQL server of
// its own.
type pass struct {
	cfg    Config
	row    Row
	server string
	logf   func(format string, args ...any)

	mu       sync.Mutex
	calls    []wire.Call
	summary  *wire.LoadSummary
	progress chan struct{} // receives, without blocking, after each record
}

// run runs the pass: the database, the server, the load, the rotations.
func (p *pass) run(ctx context.Context) (res Result, err error) {
	cfg := p.cfg
	res = Result{Row: p.row, Server: p.server}
	p.progress = make(chan struct{}, 1)
	pg, err := pgtest.StartServer(ctx)
	if err != nil {
		return res, err
	}
	defer pg.Stop()
	admin, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		return res, err
	}
	defer admin.Close(context.Background())
	dir, err := os.MkdirTemp("", "drill-pass-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	// Two login roles (the single-role strategy uses app_a alone) whose
	// idle sessions PostgreSQL ends: the pool's spare connections die
	// between bursts and the next burst logs in again. The timeout is
	// longer than the second after which the pool pings an idle
	// connection before handing it out, so that most calls are not given
	// a connection PostgreSQL has already ended; on a busy machine some
	// are, and the server's tool runs its query again on a live one.
	first := newSecret()
	for _, role := range []string{"app_a", "app_b"} {
		pw := newSecret()
		if role == "app_a" {
			pw = first
		}
		if _, err := admin.Exec(ctx, fmt.Sprintf("create role %s login password '%s'", role, pw)); err != nil {
			return res, err
		}
		if _, err := admin.Exec(ctx, fmt.Sprintf("alter role %s set idle_session_timeout = %d", role, cfg.IdleSessionTimeout.Milliseconds())); err != nil {
			return res, err
		}
	}
	for name, content := range map[string]string{
		"jwt_signing_key": newSecret() + newSecret(),
		"api_key":         newSecret(),
		"db.json":         fmt.Sprintf(`{"username":"app_a","password":"%s"}`, first),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return res, err
		}
	}

	dbURL := fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", pg.Host, pg.Port)
	srv, url, token, err := p.startServer(ctx, dir, dbURL+"&pool_max_conns=4")
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := srv.terminate(); err == nil && serr != nil {
			err = fmt.Errorf("the server did not exit cleanly: %w", serr)
		}
	}()

	load, stopLoad, err := p.startLoad(ctx, url, token)
	if err != nil {
		return res, err
	}
	loadStopped := false
	defer func() {
		if !loadStopped {
			stopLoad.Close()
			load.wait()
		}
	}()
	start := time.Now()

	// Before the first rotation: calls succeed, and the pool has logged in
	// more than once.
	seen := map[session]bool{}
	if !p.await(ctx, load, func(calls []wire.Call) bool {
		for _, c := range calls {
			if c.Err == "" {
				seen[session{c.PID, c.SessionStart}] = true
			}
		}
		return len(seen) >= 2
	}) {
		return res, fmt.Errorf("the load did not show two database sessions within %v: %s", evidenceWait, p.firstError())
	}
	// The agent sends SIGHUP to the PID in a file, as a supervisor writes
	// it (systemd's PIDFile=).
	var pidFile string
	if p.row.agent() && p.row.SIGHUP {
		pidFile = dir + ".pid"
		if err := writePIDFile(pidFile, srv.cmd.Process.Pid); err != nil {
			return res, err
		}
		defer os.Remove(pidFile)
	}
	role := "app_a"
	for n := 1; n <= p.row.Attempts(cfg.Rotations); n++ {
		target := role
		if p.row.Strategy == DualRole {
			target = map[string]string{"app_a": "app_b", "app_b": "app_a"}[role]
		}
		var w Window
		if p.row.agent() {
			w, err = p.agentRotate(ctx, pg, admin, dir, dbURL, pidFile, role, target, &res)
		} else {
			w = Window{Start: time.Now()}
			w.Rotation, err = p.rotate(ctx, pg, dir, target, srv.cmd.Process.Pid)
			if err == nil {
				res.Rotations++
			}
		}
		if err != nil {
			return res, fmt.Errorf("rotation %d: %w", n, err)
		}
		// The rotation is over for the server once a session that logged
		// in after ALTER ROLE serves a call as the rotated role: the pool
		// read the new password. The read-once server shows it, or that
		// it cannot log in any more (a failed call). After a rollback,
		// both show a session that logged in after it, as the role that
		// stays.
		rot := w.Rotation
		w.Evident = p.await(ctx, load, func(calls []wire.Call) bool {
			for _, c := range calls {
				switch {
				case w.RolledBack:
					if c.Err == "" && c.User == rot.Role && c.SessionStart.After(rot.AlteredDB) {
						return true
					}
				case c.Err == "" && c.User == target && c.SessionStart.After(rot.AlteredDB):
					return true
				case p.server == ReadOnceServer && (c.Err != "" && c.Start.After(rot.Altered) || c.Err == "" && c.SessionStart.After(rot.AlteredDB)):
					return true
				}
			}
			return false
		})
		w.End = time.Now()
		res.Windows = append(res.Windows, w)
		what := "shown on a new session after " + w.End.Sub(w.Start).Round(time.Millisecond).String()
		if !w.Evident {
			what = "NOT shown within " + evidenceWait.String()
		}
		if w.RolledBack {
			what = "rolled back; " + what
		}
		p.logf("rotation %d of %s: %s", n, target, what)
		// The agent's rotation switched db.json to target (agentRotate
		// checked); a manual one did, and the drill follows it once shown.
		if p.row.Strategy == DualRole && !w.RolledBack && (w.Evident || p.row.agent()) {
			role = target
		}
		if err := sleep(ctx, cfg.Spacing); err != nil {
			return res, err
		}
	}
	stopLoad.Close()
	loadStopped = true
	if err := load.wait(); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.summary == nil {
		return res, errors.New("the load client wrote no summary")
	}
	res.Unsent = p.summary.Unsent
	res.tally(p.calls)
	return res, nil
}

// startServer runs the example server, built, with its flags, and reads from
// its output the URL it serves on and the bearer token it prints.
func (p *pass) startServer(ctx context.Context, dir, dbURL string) (*proc, string, string, error) {
	args := []string{"-secrets", dir, "-db", dbURL, "-http", "127.0.0.1:0", "-ttl", p.cfg.TTL.String(), "-print-token"}
	if p.server == ReadOnceServer {
		args = append(args, "-read-once")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.cfg.Bin, serverBin), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", "", err
	}
	srv, err := startProc(p.server+" server", cmd, p.cfg.serverLog(), nil)
	if err != nil {
		return nil, "", "", err
	}
	urlRE := regexp.MustCompile(`serving MCP \(streamable HTTP\) on (http://\S+);`)
	var url, token string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if m := urlRE.FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		if strings.HasPrefix(line, "  ey") {
			token = strings.TrimSpace(line)
		}
		if strings.HasPrefix(line, "pid "+strconv.Itoa(cmd.Process.Pid)+":") {
			break // the last line before it serves
		}
	}
	go io.Copy(io.Discard, stdout)
	if url == "" || token == "" {
		serr := srv.terminate()
		return nil, "", "", fmt.Errorf("the server printed no URL or token (%v)%s", serr, srv.errs)
	}
	return srv, url, token, nil
}

// startLoad runs the load client against url and collects its records. The
// load stops when the returned writer is closed.
func (p *pass) startLoad(ctx context.Context, url, token string) (*proc, io.WriteCloser, error) {
	cfg := p.cfg
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.Bin, loadBin), "-url", url,
		"-rate", strconv.Itoa(cfg.Rate), "-burst", strconv.Itoa(cfg.Burst), "-burst-every", cfg.BurstEvery.String())
	cmd.Env = append(os.Environ(), wire.TokenEnv+"="+token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stdin io.WriteCloser
	load, err := startProc(p.server+" load", cmd, cfg.Log, &stdin)
	if err != nil {
		return nil, nil, err
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			if bytes.Contains(line, []byte(`"unsent"`)) {
				var s wire.LoadSummary
				if json.Unmarshal(line, &s) == nil {
					p.summary = &s
				}
			} else {
				var c wire.Call
				if json.Unmarshal(line, &c) == nil {
					p.calls = append(p.calls, c)
				}
			}
			p.mu.Unlock()
			select {
			case p.progress <- struct{}{}:
			default:
			}
		}
	}()
	// Its records are all read before wait returns.
	wrapped := &proc{name: load.name, cmd: load.cmd, errs: load.errs, done: make(chan struct{})}
	go func() {
		defer close(wrapped.done)
		<-read
		wrapped.err = load.wait()
	}()
	return wrapped, stdin, nil
}

// await waits until the calls recorded so far satisfy ok, the load exits, or
// evidenceWait passes; it reports whether ok was satisfied.
func (p *pass) await(ctx context.Context, load *proc, ok func([]wire.Call) bool) bool {
	giveUp := time.NewTimer(evidenceWait)
	defer giveUp.Stop()
	seen := 0
	for {
		p.mu.Lock()
		newCalls := p.calls[seen:]
		seen = len(p.calls)
		p.mu.Unlock()
		if ok(newCalls) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-load.done:
			return false
		case <-giveUp.C:
			return false
		case <-p.progress:
		}
	}
}

// rotate runs the rotator program once for role, as the row says.
func (p *pass) rotate(ctx context.Context, pg *pgtest.Server, dir, role string, pid int) (wire.Rotation, error) {
	args := []string{"-secrets", dir, "-role", role, "-first", p.row.First, "-gap", p.cfg.Gap.String()}
	if p.row.SIGHUP {
		args = append(args, "-sighup", strconv.Itoa(pid))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.cfg.Bin, rotatorBin), args...)
	cmd.Env = append(os.Environ(), wire.AdminURLEnv+"="+pg.SuperURL())
	var out bytes.Buffer
	cmd.Stdout = &out
	r, err := startProc("rotate", cmd, p.cfg.Log, nil)
	if err != nil {
		return wire.Rotation{}, err
	}
	if err := r.wait(); err != nil {
		return wire.Rotation{}, err
	}
	var rot wire.Rotation
	if err := json.Unmarshal(out.Bytes(), &rot); err != nil {
		return rot, fmt.Errorf("the rotator's output: %w", err)
	}
	return rot, nil
}

func (p *pass) firstError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.calls {
		if c.Err != "" {
			return c.Err
		}
	}
	return fmt.Sprintf("%d calls, none failed", len(p.calls))
}

// session names a database session: process ids are reused.
type session struct {
	pid   int32
	start time.Time
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func newSecret() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
