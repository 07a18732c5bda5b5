package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// The environment of a child process started by these tests: what it does,
// in which directory, with which value.
const (
	childEnv      = "FILEROT_CHILD"
	childDirEnv   = "FILEROT_DIR"
	childValueEnv = "FILEROT_VALUE"
)

// TestChildProcess is not a test: it is what a child process started by
// the tests below runs (the test binary again, with childEnv set).
//
//   - "crash": stage a value and stop, holding the lock with the temporary
//     file written, until killed;
//   - "race": wait for a line on stdin, then create the rotation record and
//     stage a value, and print the two outcomes as JSON.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by the tests as a child process")
	}
	src := mustNew(t, WithDir(os.Getenv(childDirEnv)))
	ctx := context.Background()
	v, err := src.Fetch(ctx, "db.json")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	value := []byte(os.Getenv(childValueEnv))
	switch mode {
	case "crash":
		hook := func(string) {
			fmt.Println("locked")
			select {} // until SIGKILL
		}
		src.testHookCommit.Store(&hook)
		_, err := src.Stage(ctx, "db.json", secrets.StageRequest{Current: v.Current.Version(), Value: value})
		fmt.Println("error: the stage returned:", err)
	case "race":
		bufio.NewReader(os.Stdin).ReadString('\n')
		_, recErr := src.SaveRotation(ctx, "db.json", secrets.Rotation{ID: string(value), Step: secrets.StepStarted, Owner: string(value)})
		_, stageErr := src.Stage(ctx, "db.json", secrets.StageRequest{Current: v.Current.Version(), Value: value})
		json.NewEncoder(os.Stdout).Encode(raceOutcome{Record: outcome(recErr), Stage: outcome(stageErr)})
	}
}

type raceOutcome struct{ Record, Stage string }

func outcome(err error) string {
	switch {
	case err == nil:
		return "won"
	case errors.Is(err, secrets.ErrConflict):
		return "conflict"
	}
	return "error: " + err.Error()
}

func child(t *testing.T, mode, dir, value string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childDirEnv+"="+dir, childValueEnv+"="+value)
	cmd.Stderr = os.Stderr
	return cmd
}

func writeDB(t *testing.T, dir, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "db.json"), []byte(value), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestKilledWriterIsRecovered kills a real process with SIGKILL while it
// holds a key's write lock with its temporary file written: the lock keeps
// other writers out until it expires (on the Source's clock), and the next
// writer then breaks it, removes the temporary file and stages its own
// value.
func TestKilledWriterIsRecovered(t *testing.T) {
	dir := t.TempDir()
	writeDB(t, dir, `{"username":"app","password":"old"}`)
	cmd := child(t, "crash", dir, `{"username":"app","password":"from-the-child"}`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child said %q, want locked", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, ".db.json.rotor-tmp-*"))
	if len(left) != 1 || !exists(t, lockPath(filepath.Join(dir, "db.json"))) {
		t.Fatalf("the killed writer left temporary files %v and a lock: want one and a lock", left)
	}

	clk := fakeclock.New(time.Now())
	src := mustNew(t, WithDir(dir), WithClock(clk))
	v, err := src.Fetch(testCtx(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	req := secrets.StageRequest{Current: v.Current.Version(), Value: []byte(`{"username":"app","password":"new"}`)}
	// Within its expiry the lock keeps this writer out: it waits until
	// its context ends.
	short, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := src.Stage(short, "db.json", req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stage while the dead writer's lock is fresh: err = %v, want the context's deadline", err)
	}
	clk.Advance(DefaultLockExpiry + time.Second)
	id, err := src.Stage(testCtx(t), "db.json", req)
	if err != nil {
		t.Fatalf("Stage after the lock expired: %v", err)
	}
	v, err = src.Fetch(testCtx(t), "db.json")
	if err != nil || v.Pending.Version() != id || !strings.Contains(v.Pending.Reveal(), `"new"`) {
		t.Fatalf("after recovery: pending %q, err %v", v.Pending.Version(), err)
	}
	left, _ = filepath.Glob(filepath.Join(dir, ".db.json.rotor-tmp-*"))
	if len(left) != 0 || exists(t, lockPath(filepath.Join(dir, "db.json"))) {
		t.Fatalf("after recovery: temporary files %v, lock left %v", left, exists(t, lockPath(filepath.Join(dir, "db.json"))))
	}
}

// TestEmptyLockFileExpires: a lock file its writer died before filling
// expires lockExpiry after it was made, by its modification time.
func TestEmptyLockFileExpires(t *testing.T) {
	dir := t.TempDir()
	writeDB(t, dir, `{"a":1}`)
	path := filepath.Join(dir, "db.json")
	if err := os.WriteFile(lockPath(path), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(time.Now())
	src := mustNew(t, WithDir(dir), WithClock(clk), WithLockExpiry(time.Minute))
	short, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := src.SaveRotation(short, "db.json", secrets.Rotation{ID: "r", Step: secrets.StepStarted}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("save under a fresh empty lock: err = %v", err)
	}
	clk.Advance(time.Minute + time.Second)
	if _, err := src.SaveRotation(testCtx(t), "db.json", secrets.Rotation{ID: "r", Step: secrets.StepStarted}); err != nil {
		t.Fatalf("save after the empty lock expired: %v", err)
	}
}

// TestLostLockStopsTheWrite: a writer whose lock was broken and taken by
// another (it stalled past the expiry) does not commit its write.
func TestLostLockStopsTheWrite(t *testing.T) {
	dir := t.TempDir()
	writeDB(t, dir, `{"a":1}`)
	path := filepath.Join(dir, "db.json")
	src := mustNew(t, WithDir(dir))
	hook := func(string) {
		// Another writer broke the lock and holds its own now.
		b, _ := json.Marshal(lockInfo{Token: "someone-else", Expires: time.Now().Add(time.Hour)})
		os.WriteFile(lockPath(path), b, 0o600)
	}
	src.testHookCommit.Store(&hook)
	v, err := src.Fetch(testCtx(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stage(testCtx(t), "db.json", secrets.StageRequest{Current: v.Current.Version(), Value: []byte(`{"a":2}`)})
	if !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("Stage that lost its lock: err = %v, want ErrTransient", err)
	}
	if exists(t, pendingPath(path)) {
		t.Fatal("a write that lost its lock was committed")
	}
	if !exists(t, lockPath(path)) {
		t.Fatal("the writer removed a lock that was not its own")
	}
}

// TestProcessesRace starts writers in separate processes at once on one
// key: of the record's creation and of the staging, exactly one each wins,
// and the others fail with ErrConflict.
func TestProcessesRace(t *testing.T) {
	dir := t.TempDir()
	writeDB(t, dir, `{"username":"app","password":"old"}`)
	const n = 4
	type proc struct {
		cmd *exec.Cmd
		in  interface{ Close() error }
		out *bufio.Reader
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd := child(t, "race", dir, fmt.Sprintf(`{"username":"app","password":"candidate-%d"}`, i))
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = proc{cmd, in, bufio.NewReader(out)}
	}
	// Closing stdin releases every child at once.
	for _, p := range procs {
		p.in.Close()
	}
	recWins, stageWins := 0, 0
	for i, p := range procs {
		var o raceOutcome
		line, _ := p.out.ReadString('\n')
		p.cmd.Wait()
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("child %d said %q", i, line)
		}
		for _, got := range []struct {
			what, outcome string
			wins          *int
		}{{"record", o.Record, &recWins}, {"stage", o.Stage, &stageWins}} {
			switch got.outcome {
			case "won":
				*got.wins++
			case "conflict":
			default:
				t.Fatalf("child %d: %s: %s", i, got.what, got.outcome)
			}
		}
	}
	if recWins != 1 || stageWins != 1 {
		t.Fatalf("%d processes created the record and %d staged; want exactly one each", recWins, stageWins)
	}
	src := mustNew(t, WithDir(dir))
	v, err := src.Fetch(testCtx(t), "db.json")
	if err != nil || v.Pending.IsZero() || !strings.Contains(v.Pending.Reveal(), "candidate-") {
		t.Fatalf("after the race: pending set %v, err %v", !v.Pending.IsZero(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".db.json.rotor-*")); len(left) != 2 {
		t.Fatalf("rotation files after the race: %v, want the pending file and the record", left)
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	return err == nil
}
