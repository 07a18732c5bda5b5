package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestAgent rotates an RDS-style secret in smtest with rotor's own agent
// instead of the Lambda's steps: rotate.New over the awssm source and the
// PostgreSQL target, one Rotate, against a real PostgreSQL. The agent
// stages AWSPENDING, sets and verifies the password, promotes it to
// AWSCURRENT, waits out the overlap (on a fake clock, moved from wait to
// wait) and revokes the old credential.
func TestAgent(t *testing.T) {
	for _, scheme := range []string{"single", "alternating"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEnv(t, scheme)
			role := uniq("agent_" + scheme[:3])
			super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'agent-old-pw'")
			target := &rotate.Postgres{DSN: pg.URL("x", "x", "postgres")}
			if scheme == "alternating" {
				other := role + "_b"
				super(t, ctx, "CREATE ROLE "+other+" LOGIN PASSWORD 'agent-other-pw'")
				target.Admin, target.Roles = pg.SuperURL(), []string{role, other}
			}
			const name = "db/agent"
			e.create(t, name, dbJSON(role, "agent-old-pw", nil))
			src, err := awssm.New(e.client)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clk := fakeclock.New(start)
			// A lease of an hour puts the ends of the steps' contexts far
			// beyond the waits (a second's poll, an overlap of three
			// consumer TTLs): the clock is moved only to the waits.
			agent, err := rotate.New(src, target, time.Second, rotate.WithClock(clk),
				rotate.WithLease(time.Hour), rotate.WithPollInterval(time.Second),
				rotate.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				rep rotate.Report
				err error
			}
			done := make(chan result, 1)
			go func() {
				rep, err := agent.Rotate(ctx, name)
				done <- result{rep, err}
			}()
			var res result
			for moved := false; !moved; {
				select {
				case res = <-done:
					moved = true
					continue
				default:
				}
				// Wait for a timer within ten minutes (a wait, not the end
				// of a step), or for Rotate to return.
				wctx, cancel := context.WithCancel(ctx)
				next := make(chan time.Time, 1)
				go func() {
					_ = clk.WaitFor(wctx, func(ds []time.Time) bool {
						for _, d := range ds {
							if d.Sub(clk.Now()) <= 10*time.Minute {
								next <- d
								return true
							}
						}
						return false
					})
				}()
				select {
				case res = <-done:
					moved = true
				case d := <-next:
					clk.Advance(d.Sub(clk.Now()))
				case <-ctx.Done():
					t.Fatal("Rotate did not return")
				}
				cancel()
			}
			if res.err != nil {
				t.Fatalf("Rotate: %v", res.err)
			}
			if waited := clk.Now().Sub(start); waited < rotate.MinOverlapFactor*time.Second {
				t.Fatalf("the agent revoked after %v of its clock, less than the overlap", waited)
			}
			stages := e.srv.Stages(name)
			if len(stages[res.rep.To]) != 1 || stages[res.rep.To][0] != "AWSCURRENT" {
				t.Fatalf("labels after the rotation: %v; want AWSCURRENT alone on %s", stages, res.rep.To)
			}
			v, err := src.Fetch(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if v.Current.Version() != res.rep.To || v.Previous.Version() != res.rep.From || !v.Pending.IsZero() {
				t.Fatalf("Fetch: current %s, previous %s, pending %v; want %s, %s, none",
					v.Current.Version(), v.Previous.Version(), !v.Pending.IsZero(), res.rep.To, res.rep.From)
			}
			var doc map[string]any
			if err := json.Unmarshal(v.Current.Bytes(), &doc); err != nil || doc["host"] != pg.Host || doc["engine"] != "postgres" {
				t.Fatal("the rotated document lost its other members")
			}
			u, p := e.value(t, name, "AWSCURRENT")
			if err := login(ctx, u, p); err != nil {
				t.Fatalf("AWSCURRENT does not log in: %v", err)
			}
			if scheme == "alternating" && u != role+"_b" {
				t.Fatalf("AWSCURRENT names %q, want the other role", u)
			}
			// The agent revokes the old credential after the overlap: in
			// both schemes AWSPREVIOUS no longer logs in.
			u, p = e.value(t, name, "AWSPREVIOUS")
			if p != "agent-old-pw" {
				t.Fatal("AWSPREVIOUS is not the credential before the rotation")
			}
			if login(ctx, u, p) == nil {
				t.Fatal("AWSPREVIOUS still logs in after the agent revoked it")
			}
			rec, err := src.LoadRotation(ctx, name)
			if err != nil || rec.Step != secrets.StepDone {
				t.Fatalf("rotation record: step %q, %v; want done", rec.Step, err)
			}
		})
	}
}
