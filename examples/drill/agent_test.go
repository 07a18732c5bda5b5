package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

// TestLogFields reads the agent's log lines as log/slog's text handler
// writes them, behind the prefix the drill adds.
func TestLogFields(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("rotation step", "event", "step", "key", "db.json", "step", "set", "from", "v1", "to", "v2")
	log.Warn("rotation rolled-back", "event", "rolled-back", "cause", `verify: login as "app_b" with the new password: failed`, "to", "")
	log.Info("sent SIGHUP", "pid", 42)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	f := logFields("agent: " + lines[0])
	if f["event"] != "step" || f["step"] != "set" || f["key"] != "db.json" || f["msg"] != "rotation step" || f["level"] != "INFO" {
		t.Errorf("step line: %q", f)
	}
	if _, err := time.Parse(time.RFC3339Nano, f["time"]); err != nil {
		t.Errorf("time %q: %v", f["time"], err)
	}
	f = logFields(lines[1])
	if f["event"] != "rolled-back" || f["cause"] != `verify: login as "app_b" with the new password: failed` || f["to"] != "" {
		t.Errorf("rollback line: %q", f)
	}
	if f := logFields(lines[2]); f["msg"] != "sent SIGHUP" || f["pid"] != "42" {
		t.Errorf("SIGHUP line: %q", f)
	}
	if f := logFields(`no fields here, key="unterminated`); len(f) != 0 {
		t.Errorf("a line without whole fields: %q", f)
	}
}

// TestLineWriter hands on whole lines, however they are written, and copies
// everything to its tee.
func TestLineWriter(t *testing.T) {
	var got []string
	var tee bytes.Buffer
	w := &lineWriter{tee: &tee, fn: func(l string) { got = append(got, l) }}
	for _, s := range []string{"a=1", " b=2\nc=", "3\n", "d=4"} {
		w.Write([]byte(s))
	}
	if !slices.Equal(got, []string{"a=1 b=2", "c=3"}) || tee.String() != "a=1 b=2\nc=3\nd=4" {
		t.Errorf("lines %q, tee %q", got, tee.String())
	}
}

// TestAgentEnv: the agent inherits none of its own variables from the
// drill's environment.
func TestAgentEnv(t *testing.T) {
	got := agentEnv([]string{"PATH=/bin", agentAdminEnv + "=postgres://x", agentWebhookEnv + "=http://x", agentStopAtEnv + "=set", "HOME=/root"})
	if !slices.Equal(got, []string{"PATH=/bin", "HOME=/root"}) {
		t.Errorf("%q", got)
	}
}

// TestCheckRolledBack: what Check asks of the agent's row whose verify
// fails, from both servers.
func TestCheckRolledBack(t *testing.T) {
	row := Row{By: Agent, SIGHUP: true, Strategy: DualRole, VerifyFails: true}
	win := Window{Evident: true, RolledBack: true, Refused: "app_b", Rotation: wire.Rotation{Role: "app_a"}}
	for _, server := range []string{RotorServer, ReadOnceServer} {
		clean := Result{Row: row, Server: server, RolledBack: 1, Reconnections: 1, Windows: []Window{win}, Calls: 10}
		if p := Check(clean, 5); len(p) != 0 {
			t.Errorf("%s: a clean rollback: %q", server, p)
		}
		failed := clean
		failed.Failed, failed.Failures = 1, []string{"rotation 1 ..."}
		if p := Check(failed, 5); len(p) != 2 || !strings.Contains(p[0], "1 of 10 calls failed") {
			t.Errorf("%s: a failed call: %q", server, p)
		}
		served := clean
		served.ServedRefused = 3
		if p := Check(served, 5); len(p) != 1 || !strings.Contains(p[0], "whose new credential failed its verify") {
			t.Errorf("%s: the refused role served: %q", server, p)
		}
		rotated := clean
		rotated.RolledBack, rotated.Rotations = 0, 1
		if p := Check(rotated, 5); len(p) != 1 || !strings.Contains(p[0], "1 rotations done and 0 rolled back") {
			t.Errorf("%s: a rotation that did not roll back: %q", server, p)
		}
		unseen := clean
		unseen.Windows = []Window{{RolledBack: true, Refused: "app_b", Rotation: wire.Rotation{Role: "app_a"}}}
		if p := Check(unseen, 5); len(p) != 1 || !strings.Contains(p[0], "after the rollback as app_a") {
			t.Errorf("%s: no session after the rollback: %q", server, p)
		}
		found := clean
		found.Problems = []string{"db.json changed though the rotation rolled back"}
		if p := Check(found, 5); len(p) != 1 || p[0] != found.Problems[0] {
			t.Errorf("%s: the pass's findings: %q", server, p)
		}
	}
	// An agent row that rotates: five done, none rolled back.
	agent := Result{Row: Row{By: Agent, Strategy: SingleRole}, Server: RotorServer, Rotations: 5, Reconnections: 5, Calls: 10}
	for range 5 {
		agent.Windows = append(agent.Windows, Window{Evident: true})
	}
	if p := Check(agent, 5); len(p) != 0 {
		t.Errorf("a clean agent row: %q", p)
	}
	agent.RolledBack = 1
	if p := Check(agent, 5); len(p) != 1 {
		t.Errorf("an agent row with a rollback: %q", p)
	}
}

// TestTallyServedRefused counts the calls served as the refused role from
// the rolled-back rotation's start on.
func TestTallyServedRefused(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	call := func(start float64, user string) wire.Call {
		return wire.Call{Start: at(start), End: at(start + 0.01), User: user, PID: 1, SessionStart: at(0)}
	}
	r := Result{Server: RotorServer, Windows: []Window{{Start: at(10), End: at(12), Evident: true, RolledBack: true, Refused: "app_b"}}}
	r.tally([]wire.Call{call(5, "app_b"), call(9, "app_a"), call(11, "app_a"), call(11.5, "app_b"), call(20, "app_b")})
	if r.ServedRefused != 2 {
		t.Errorf("%d calls served as the refused role; want 2 (those from the rotation on)", r.ServedRefused)
	}
}
