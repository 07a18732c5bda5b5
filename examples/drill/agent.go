package main

// The agent's rows: the rotation is done by examples/rotator, the rotation
// agent of secrets/rotate as a command, run once for each rotation from
// outside the server, as an operator or a CronJob runs it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
	"github.com/rotorhq/rotor/internal/pgtest"
)

// The agent's exit statuses that the drill expects (examples/rotator -h).
const (
	agentRotated    = 0
	agentRolledBack = 3
)

// The agent's environment (examples/rotator): the administrator's
// connection string, and the two it must not inherit from the drill's.
const (
	agentAdminEnv   = "ROTOR_ADMIN_DSN"
	agentWebhookEnv = "ROTOR_WEBHOOK_URL"
	agentStopAtEnv  = "ROTOR_ROTATOR_STOP_AT"
)

// pendingFile is where sources/file stages the pending version of db.json,
// which a rollback must remove.
const pendingFile = ".db.json.rotor-pending"

// expired is the VALID UNTIL given to the standby role in the row whose
// verify fails: a date long past, as a role created with an expiry and
// never renewed has.
const expired = "2000-01-01 00:00:00+00"

// agentRun is what the drill saw of one run of the agent: its exit status,
// and when it reported its steps (the drill's clock when it read the line;
// setDB the database's clock then, comparable with wire.Call.SessionStart).
type agentRun struct {
	exit      int
	set       time.Time
	setDB     time.Time
	promoted  time.Time
	signalled time.Time
	cause     string // why it rolled back (names, never a value)
	out       string // its standard output
}

// agentRotate runs the agent once on the pass's db.json, whose role is role;
// target is the role the rotation should leave it naming. It returns the
// rotation's window, with its start and what happened; the caller waits
// for the server to show it. In the row whose verify fails, it first makes
// target's validity run out, and after the rollback checks the store and
// the database (Result.Problems).
func (p *pass) agentRotate(ctx context.Context, pg *pgtest.Server, admin *pgx.Conn, dir, dbURL, pidFile, role, target string, res *Result) (Window, error) {
	before, err := os.ReadFile(filepath.Join(dir, "db.json"))
	if err != nil {
		return Window{}, err
	}
	if p.row.VerifyFails {
		// The standby role of the pair cannot log in any more: its
		// VALID UNTIL has passed. ALTER ROLE ... PASSWORD still works on
		// it, so the agent's set step succeeds and its verify, a login
		// with the new password, is refused.
		if _, err := admin.Exec(ctx, fmt.Sprintf("alter role %s valid until '%s'", target, expired)); err != nil {
			return Window{}, err
		}
		p.logf("role %s: VALID UNTIL %s (expired)", target, expired)
	}
	// A connection of the drill's own reads the database's clock as the
	// agent reports its steps.
	clock, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		return Window{}, err
	}
	defer clock.Close(context.Background())

	w := Window{Start: time.Now()}
	run, err := p.runAgent(ctx, dir, dbURL, pg.SuperURL(), pidFile, clock)
	if err != nil {
		return w, err
	}
	switch run.exit {
	case agentRotated:
		if p.row.VerifyFails {
			return w, fmt.Errorf("the agent rotated to a role that cannot log in (exit status 0): %s", strings.TrimSpace(run.out))
		}
		if run.set.IsZero() || !strings.HasPrefix(run.out, "rotated ") {
			return w, fmt.Errorf("the agent exited 0 without reporting the set step and the rotation (output %q)", run.out)
		}
		now, _, err := readCred(dir)
		if err != nil {
			return w, err
		}
		if now != target {
			return w, fmt.Errorf("after the rotation db.json names role %s; want %s", now, target)
		}
		res.Rotations++
		w.Rotation = wire.Rotation{Role: target, Stored: run.promoted, Altered: run.set, AlteredDB: run.setDB, Signalled: run.signalled}
		p.logf("agent rotated %s (exit status 0)", target)
	case agentRolledBack:
		if !p.row.VerifyFails {
			return w, fmt.Errorf("the agent rolled back (exit status 3): %s", run.cause)
		}
		res.RolledBack++
		// The window's rotation is the rollback: the role that stays,
		// and the database's clock once the agent is done, after which a
		// new session logs in with the credential db.json holds.
		w.RolledBack, w.Refused = true, target
		w.Rotation = wire.Rotation{Role: role, Altered: time.Now()}
		if err := clock.QueryRow(ctx, "select clock_timestamp()").Scan(&w.Rotation.AlteredDB); err != nil {
			return w, err
		}
		p.logf("agent rolled back (exit status 3): %s", run.cause)
		if run.cause == "" {
			res.Problems = append(res.Problems, "the agent rolled back without logging a cause")
		}
		if !run.signalled.IsZero() {
			res.Problems = append(res.Problems, "the agent sent SIGHUP for a rotation it rolled back")
		}
		res.Problems = append(res.Problems, afterRollback(ctx, dir, dbURL, role, before)...)
	default:
		return w, fmt.Errorf("the agent exited with status %d; want %d or %d", run.exit, agentRotated, agentRolledBack)
	}
	return w, nil
}

// runAgent runs the built examples/rotator once, one-shot, as the row says:
// -ttl the server's TTL (so its overlap is its minimum, 3 × TTL), the
// configured deadline and poll, -roles for the alternating roles (with the
// administrator's DSN, which the single role does without: it changes its
// own password), -sighup-pidfile when the row sends SIGHUP. It reads the
// agent's log as it is written, to time the steps.
func (p *pass) runAgent(ctx context.Context, dir, dbURL, adminURL, pidFile string, clock *pgx.Conn) (agentRun, error) {
	cfg := p.cfg
	args := []string{"-secrets", dir, "-db", dbURL, "-ttl", cfg.TTL.String(),
		"-overlap-deadline", cfg.AgentDeadline.String(), "-poll", cfg.AgentPoll.String()}
	env := agentEnv(os.Environ())
	if p.row.Strategy == DualRole {
		args = append(args, "-roles", "app_a,app_b")
		env = append(env, agentAdminEnv+"="+adminURL)
	}
	if pidFile != "" {
		args = append(args, "-sighup-pidfile", pidFile)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.Bin, agentBin), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out

	var (
		mu       sync.Mutex
		run      agentRun
		clockErr error
	)
	log := &lineWriter{tee: cfg.Log, fn: func(line string) {
		f := logFields(line)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case f["event"] == "step" && f["step"] == "set" && run.set.IsZero():
			run.set = now
			if err := clock.QueryRow(ctx, "select clock_timestamp()").Scan(&run.setDB); err != nil {
				clockErr = err
			}
		case f["event"] == "promoted" && run.promoted.IsZero():
			run.promoted = now
		case f["msg"] == "sent SIGHUP" && run.signalled.IsZero():
			run.signalled = now
		case f["event"] == "rolled-back":
			run.cause = f["cause"]
		}
	}}
	r, err := startProc("agent", cmd, log, nil)
	if err != nil {
		return agentRun{}, err
	}
	werr := r.wait() // the log is all read when it returns
	mu.Lock()
	defer mu.Unlock()
	run.out = out.String()
	var exit *exec.ExitError
	switch {
	case werr == nil:
		run.exit = 0
	case errors.As(werr, &exit) && exit.Exited():
		run.exit = exit.ExitCode()
	default:
		return run, werr
	}
	if run.exit != agentRotated && run.exit != agentRolledBack {
		return run, fmt.Errorf("the agent exited with status %d: %w", run.exit, werr)
	}
	if clockErr != nil {
		return run, fmt.Errorf("the database's clock: %w", clockErr)
	}
	return run, nil
}

// agentEnv is env without the agent's variables, which the drill sets
// itself or not at all.
func agentEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name != agentAdminEnv && name != agentWebhookEnv && name != agentStopAtEnv {
			out = append(out, kv)
		}
	}
	return out
}

// afterRollback checks, after the agent rolled back, that db.json holds
// what it held before (before), that no pending version is left beside it,
// and that the database accepts its credential, that of role.
func afterRollback(ctx context.Context, dir, dbURL, role string, before []byte) []string {
	var problems []string
	after, err := os.ReadFile(filepath.Join(dir, "db.json"))
	if err != nil {
		return []string{fmt.Sprintf("after the rollback: %v", err)}
	}
	if !bytes.Equal(after, before) {
		problems = append(problems, "db.json changed though the rotation rolled back")
	}
	if _, err := os.Stat(filepath.Join(dir, pendingFile)); err == nil {
		problems = append(problems, "a pending version is left beside db.json after the rollback")
	}
	user, password, err := readCred(dir)
	if err != nil {
		return append(problems, err.Error())
	}
	if user != role {
		problems = append(problems, fmt.Sprintf("after the rollback db.json names role %s; want %s", user, role))
	}
	cc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return append(problems, err.Error())
	}
	cc.User, cc.Password = user, password
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return append(problems, fmt.Sprintf("after the rollback the database refuses the credential db.json holds: %v", err))
	}
	defer conn.Close(context.Background())
	var current string
	if err := conn.QueryRow(ctx, "select current_user").Scan(&current); err != nil || current != role {
		problems = append(problems, fmt.Sprintf("after the rollback a login with db.json's credential runs as %q (%v); want %s", current, err, role))
	}
	return problems
}

// readCred reads the user name and password in db.json.
func readCred(dir string) (user, password string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "db.json"))
	if err != nil {
		return "", "", err
	}
	var c struct{ Username, Password string }
	if err := json.Unmarshal(b, &c); err != nil || c.Username == "" {
		return "", "", errors.New("db.json is not a JSON object with a username")
	}
	return c.Username, c.Password, nil
}

// writePIDFile writes pid to path, as a supervisor does (systemd's
// PIDFile=), for the agent's -sighup-pidfile.
func writePIDFile(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

// logFields parses one line of log/slog's text handler (key=value, a value
// with spaces or quotes in Go's quoted form) into its fields. A word
// without '=', such as the prefix the drill adds, is skipped.
func logFields(line string) map[string]string {
	f := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			return f
		}
		if sp := strings.IndexByte(line, ' '); sp >= 0 && sp < eq {
			line = line[sp+1:] // a word without '='
			continue
		}
		key, rest := line[:eq], line[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return f
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		f[key] = val
		line = rest
	}
}

// lineWriter calls fn with each whole line written to it, and copies what
// it is written to tee when tee is not nil.
type lineWriter struct {
	tee io.Writer
	fn  func(line string)

	mu  sync.Mutex
	buf []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tee != nil {
		l.tee.Write(b)
	}
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		l.fn(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}
