package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// TestNoPasswordInLogsOrErrors runs both schemes, with failing steps as well, on a
// cluster with log_statement=all and log_connections, and looks for every
// password in the server's log, the handler's log lines and its errors.
func TestNoPasswordInLogsOrErrors(t *testing.T) {
	ctx := ctxT(t)
	db := pgtest.Start(t)
	sconn, err := pgx.Connect(ctx, db.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	for _, q := range []string{"CREATE ROLE secrecy_single LOGIN PASSWORD 'old-secret-single'", "CREATE ROLE secrecy_alt LOGIN PASSWORD 'old-secret-alt'",
		"ALTER SYSTEM SET log_statement = 'all'", "ALTER SYSTEM SET log_connections = on",
		"ALTER SYSTEM SET log_min_error_statement = 'info'", "SELECT pg_reload_conf()"} {
		if _, err := sconn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	js := func(user, pw string, extra map[string]any) string {
		m := map[string]any{"engine": "postgres", "host": db.Host, "port": db.Port, "username": user, "password": pw, "dbname": "postgres", "ssl": false}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	var logs bytes.Buffer
	var errs []string
	seen := []string{"old-secret-single", "old-secret-alt", db.Password, "wrong-master-pw"}
	record := func(e env, arn string) {
		for _, label := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"} {
			out, err := e.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(label)})
			if err != nil {
				continue
			}
			var m map[string]any
			_ = json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m)
			if p, ok := m["password"].(string); ok {
				seen = append(seen, p)
			}
		}
	}
	run := func(e env, arn string, steps ...string) string {
		token := e.rotate(t, arn)
		for _, s := range steps {
			for range 2 {
				if err := e.step(ctx, arn, token, s); err != nil {
					errs = append(errs, err.Error())
				}
				record(e, arn)
			}
		}
		return token
	}
	for _, scheme := range []string{"single", "alternating"} {
		e := newEnv(t, scheme)
		e.rot.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		var arn string
		if scheme == "single" {
			arn = e.create(t, "db/secrecy", js("secrecy_single", "old-secret-single", nil))
		} else {
			badMaster := e.create(t, "db/secrecy-badmaster", js("postgres", "wrong-master-pw", nil))
			bad := e.create(t, "db/secrecy-bad", js("secrecy_alt", "old-secret-alt", map[string]any{"masterarn": badMaster}))
			run(e, bad, stepCreate, stepSet, stepTest, stepFinish)
			master := e.create(t, "db/secrecy-master", js("postgres", db.Password, nil))
			arn = e.create(t, "db/secrecy", js("secrecy_alt", "old-secret-alt", map[string]any{"masterarn": master}))
		}
		// Out of order first (failures), then in order, twice.
		tok := run(e, arn, stepTest, stepFinish, stepCreate, stepTest, stepFinish, stepSet, stepTest, stepFinish)
		_ = tok
		run(e, arn, stepCreate, stepSet, stepTest, stepFinish)
	}
	if len(errs) == 0 {
		t.Fatal("no step failed: the failure paths were not exercised")
	}
	pglog := db.Log()
	if i := strings.Index(pglog, "pg_reload_conf"); i >= 0 {
		pglog = pglog[i:] // what the test's own setup logged is not the function's
	}
	if !strings.Contains(pglog, "ALTER ROLE") {
		t.Fatalf("log_statement=all did not take: %s", pglog)
	}
	for _, pw := range seen {
		if strings.Contains(pglog, pw) {
			t.Errorf("PostgreSQL's log holds a password (%d chars)", len(pw))
		}
		if strings.Contains(logs.String(), pw) {
			t.Errorf("the handler's log holds a password (%d chars)", len(pw))
		}
		for _, e := range errs {
			if strings.Contains(e, pw) {
				t.Errorf("an error holds a password: %s", e)
			}
		}
	}
	t.Logf("%d passwords checked, %d errors, log %d bytes", len(seen), len(errs), len(pglog))
}
