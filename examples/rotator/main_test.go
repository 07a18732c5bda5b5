package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// asMainEnv makes the test binary run the command's main: the tests start
// the rotator as its own process, which they can kill.
const asMainEnv = "ROTATOR_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Args = append([]string{"rotator"}, os.Args[1:]...)
		main()
		return
	}
	code := m.Run()
	if db.srv != nil {
		db.srv.Stop()
	}
	if err := goleak.Find(); err != nil && code == 0 {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if code := run(ctxT(t), []string{"-h"}, os.Getenv, &out, &out); code != exitOK {
		t.Fatalf("-h: exit %d", code)
	}
	for _, want := range []string{"Usage:", "-secrets", "-vault secret/", "VAULT_ADDR", "VAULT_TOKEN", "-ttl", "ROTOR_ADMIN_DSN", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	for name, args := range map[string][]string{
		"nothing":           {},
		"no ttl":            {"-secrets", t.TempDir(), "-db", "postgres://x/y"},
		"one role":          {"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s", "-roles", "a"},
		"roles, no admin":   {"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s", "-roles", "a,b"},
		"short overlap":     {"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1m", "-overlap", "2m"},
		"jitter, no every":  {"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s", "-jitter", "1s"},
		"key outside":       {"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s", "-key", "../db.json"},
		"secrets and vault": {"-secrets", t.TempDir(), "-vault", "secret/app/db", "-db", "postgres://x/y", "-ttl", "1s"},
		"vault and key":     {"-vault", "secret/app/db", "-key", "db.json", "-db", "postgres://x/y", "-ttl", "1s"},
		"vault, no mount":   {"-vault", "db", "-db", "postgres://x/y", "-ttl", "1s"},
		"vault, field":      {"-vault", "secret/app/db#password", "-db", "postgres://x/y", "-ttl", "1s"},
	} {
		out.Reset()
		if code := run(ctxT(t), args, func(string) string { return "" }, &out, &out); code != exitUsage {
			t.Errorf("%s: exit %d, want %d; output:\n%s", name, code, exitUsage, out.String())
		}
	}
}

// db is a PostgreSQL server shared by the tests, stopped by TestMain.
var db struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

func startDB(t *testing.T) *pgtest.Server {
	t.Helper()
	db.once.Do(func() {
		srv, err := pgtest.StartServer(context.Background())
		db.srv, db.err = srv, err
	})
	if db.err != nil {
		t.Fatalf("pgtest: %v", db.err)
	}
	return db.srv
}

func dbURL(srv *pgtest.Server) string {
	return fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", srv.Host, srv.Port)
}

func pgExec(t *testing.T, srv *pgtest.Server, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), srv.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(ctxT(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

type cred struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (c cred) login(ctx context.Context, srv *pgtest.Server) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", srv.Host, srv.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = c.Username, c.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

func parseCred(t *testing.T, s secrets.Secret) cred {
	t.Helper()
	var c cred
	if err := json.Unmarshal(s.Bytes(), &c); err != nil {
		t.Fatalf("version %s is not a credential", s.Version())
	}
	return c
}

// setup creates the roles and a secrets directory whose db.json holds the
// first role's credential.
func setup(t *testing.T, srv *pgtest.Server, roles ...string) (dir string, first cred) {
	t.Helper()
	for _, r := range roles {
		pgExec(t, srv, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'initial-%s'", r, r))
	}
	first = cred{roles[0], "initial-" + roles[0]}
	dir = t.TempDir()
	b, _ := json.Marshal(first)
	if err := os.WriteFile(filepath.Join(dir, "db.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, first
}

// rotator returns the rotator as a process of its own.
func rotator(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asMainEnv+"=1"), env...)
	return cmd
}

// runRotator runs the rotator to its end and returns its exit status and
// output.
func runRotator(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := rotator(t, env, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func baseArgs(srv *pgtest.Server, dir string) []string {
	return []string{"-secrets", dir, "-db", dbURL(srv), "-ttl", "100ms", "-poll", "100ms", "-lease", "1m"}
}

// agree asserts the end of a rotation: nothing pending, the record closed,
// the database accepting the file's credential and, for a single role,
// refusing every other password the rotation saw.
func agree(t *testing.T, srv *pgtest.Server, dir string, others ...cred) cred {
	t.Helper()
	src, err := file.New(file.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	v, err := src.Fetch(ctxT(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pending.IsZero() {
		t.Fatal("a version is still pending")
	}
	if rec, err := src.LoadRotation(ctxT(t), "db.json"); err != nil || !rec.Step.Terminal() {
		t.Fatalf("the rotation record is at %q (err %v)", rec.Step, err)
	}
	cur := parseCred(t, v.Current)
	if err := cur.login(ctxT(t), srv); err != nil {
		t.Fatalf("the database refuses the file's credential: %v", err)
	}
	for _, o := range others {
		if o.Password == cur.Password {
			continue
		}
		if err := o.login(ctxT(t), srv); err == nil {
			t.Fatalf("the database still accepts another password of role %s", o.Username)
		}
	}
	return cur
}

func noPassword(t *testing.T, out string, creds ...cred) {
	t.Helper()
	for _, c := range creds {
		if c.Password != "" && strings.Contains(out, c.Password) {
			t.Fatalf("the output holds a password:\n%s", out)
		}
	}
}

// TestRotateOnce rotates a single role once: the file and the database
// agree on a new password, the server named by the PID file gets SIGHUP,
// the webhook hears of the success, and no output holds a password.
func TestRotateOnce(t *testing.T) {
	srv := startDB(t)
	dir, first := setup(t, srv, "once_app")

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	pidFile := filepath.Join(t.TempDir(), "server.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	posts := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- string(b)
	}))
	defer hook.Close()

	code, out := runRotator(t, []string{WebhookEnv + "=" + hook.URL}, append(baseArgs(srv, dir), "-sighup-pidfile", pidFile)...)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	cur := agree(t, srv, dir, first)
	if cur.Password == first.Password || cur.Username != first.Username {
		t.Fatal("the file still holds the first password")
	}
	noPassword(t, out, first, cur)
	select {
	case <-hup:
	case <-ctxT(t).Done():
		t.Fatal("no SIGHUP")
	}
	select {
	case body := <-posts:
		if !strings.Contains(body, `"outcome":"succeeded"`) {
			t.Fatalf("webhook body %s", body)
		}
		noPassword(t, body, first, cur)
	case <-ctxT(t).Done():
		t.Fatal("no webhook post")
	}
}

// TestKilledRotatorFinishesOrUndoes kills the rotator with SIGKILL at a
// step (stopped there through StopAtEnv), checks that another rotator
// watches the dead one's record without changing it (stopped with SIGTERM,
// it exits 4), starts it again under the same owner, which takes the
// rotation over once the record has stayed unchanged for -lease, and checks
// that the rotation finished or was undone with the file and the database
// in agreement. The cases run in parallel: each waits a lease.
func TestKilledRotatorFinishesOrUndoes(t *testing.T) {
	srv := startDB(t)
	for i, tc := range []struct {
		stopAt string
		roles  bool
	}{
		{stopAt: "started"},
		{stopAt: "staged"},
		{stopAt: "set,unrecorded"},
		{stopAt: "set"},
		{stopAt: "verified"},
		{stopAt: "promoted,unrecorded"},
		{stopAt: "promoted"},
		{stopAt: "overlapped"},
		{stopAt: "set", roles: true},
		{stopAt: "promoted", roles: true},
	} {
		name := tc.stopAt
		if tc.roles {
			name += "/alternating"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			roles := []string{fmt.Sprintf("kill%d_a", i)}
			if tc.roles {
				roles = append(roles, fmt.Sprintf("kill%d_b", i))
			}
			dir, first := setup(t, srv, roles...)
			args := append(baseArgs(srv, dir), "-owner", "rotator-under-test")
			env := []string{}
			if tc.roles {
				args = append(args, "-roles", strings.Join(roles, ","))
				env = append(env, AdminDSNEnv+"="+srv.SuperURL())
			}

			cmd := rotator(t, append(env, StopAtEnv+"="+tc.stopAt), args...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if strings.TrimSpace(line) != "stopped at "+tc.stopAt {
				t.Fatalf("the rotator said %q, want it stopped at %s; stderr:\n%s", line, tc.stopAt, stderr.String())
			}
			// The password it may have staged, to check it is refused
			// once the rotation is over (single role) or undone.
			var staged cred
			if b, err := os.ReadFile(filepath.Join(dir, ".db.json.rotor-pending")); err == nil {
				json.Unmarshal(b, &staged)
			}

			// Another rotator watches the record and changes nothing while
			// the lease runs; stopped, it reports the rotation in progress.
			other := append(baseArgs(srv, dir), "-owner", "another-rotator")
			if tc.roles {
				other = append(other, "-roles", strings.Join(roles, ","))
			}
			if code, out := stopWhileWatching(t, env, dir, other...); code != exitInProgress {
				t.Fatalf("another rotator stopped while it watched the dead one's record: exit %d, want %d:\n%s", code, exitInProgress, out)
			}

			code, out := runRotator(t, env, args...)
			if code != exitOK && code != exitRolledBack {
				t.Fatalf("the restarted rotator: exit %d:\n%s", code, out)
			}
			noPassword(t, out+stderr.String(), first, staged)
			others := []cred{first, staged}
			if tc.roles {
				others = nil // the old role keeps a scrambled password nobody knows
			}
			cur := agree(t, srv, dir, others...)
			if code == exitOK && cur.Password == first.Password {
				t.Fatal("the rotator reported success and the file holds the first password")
			}
			if code == exitRolledBack && cur != first {
				t.Fatal("the rotator rolled back and the file does not hold the first credential")
			}
			t.Logf("stopped at %s, killed, restarted: exit %d", tc.stopAt, code)
		})
	}
}

// stopWhileWatching starts a rotator that finds a rotation recorded, waits
// until it says that it watches the record, stops it with SIGTERM, checks
// that the record is as it was, and returns the rotator's exit status and
// output.
func stopWhileWatching(t *testing.T, env []string, dir string, args ...string) (int, string) {
	t.Helper()
	src, err := file.New(file.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	before, err := src.LoadRotation(ctxT(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	cmd := rotator(t, env, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "watching it") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	out.Write(rest)
	cmd.Wait()
	after, err := src.LoadRotation(ctxT(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision || after.Owner != before.Owner || after.Step != before.Step {
		t.Fatalf("the watching rotator changed the record: %s at %s, was %s at %s", after.Owner, after.Step, before.Owner, before.Step)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}
