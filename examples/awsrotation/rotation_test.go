package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	var err error
	pg, err = pgtest.StartServer(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = pg.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// login reports whether user/password opens a session.
func login(ctx context.Context, user, password string) error {
	cfg, err := pgx.ParseConfig(pg.URL("x", "x", "postgres"))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = user, password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func super(t *testing.T, ctx context.Context, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func dbJSON(user, password string, extra map[string]any) string {
	m := map[string]any{"engine": "postgres", "host": pg.Host, "port": pg.Port, "username": user,
		"password": password, "dbname": "postgres", "ssl": false}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

type env struct {
	srv    *smtest.Server
	client *secretsmanager.Client
	rot    *Rotator
}

func newEnv(t *testing.T, scheme string) env {
	srv := smtest.NewServer(t)
	client := srv.Client()
	rot, err := newRotator(client, func(k string) string {
		if k == "ROTATION_SCHEME" {
			return scheme
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	rot.Log = nil
	return env{srv, client, rot}
}

func (e env) create(t *testing.T, name, value string) string {
	out, err := e.client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func (e env) rotate(t *testing.T, arn string) string {
	out, err := e.client.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:rotor"),
		RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func (e env) step(ctx context.Context, arn, token, step string) error {
	return e.rot.Handle(ctx, events.SecretsManagerSecretRotationEvent{SecretID: arn, ClientRequestToken: token, Step: step})
}

// value returns the credential under label.
func (e env) value(t *testing.T, arn, label string) (user, password string) {
	out, err := e.client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(label)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m)
	return m["username"].(string), m["password"].(string)
}

// TestSingleUser drives the four steps, each retried, with a Store-based
// consumer calling the database between them: no call fails, though
// setSecret changes the password before finishSecret moves AWSCURRENT.
func TestSingleUser(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "single")
	role := uniq("app_single")
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'old-single-pw'")
	arn := e.create(t, "db/single", dbJSON(role, "old-single-pw", nil))

	src, err := awssm.New(e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	key := "awssm://" + arn
	st, err := secrets.New(nil, secrets.WithSource("awssm", src), secrets.WithTTL(time.Hour),
		secrets.WithValidator(func(ctx context.Context, _ string, v secrets.Versions) error {
			u, _ := v.Current.Field("username")
			p, _ := v.Current.Field("password")
			return login(ctx, u.Reveal(), p.Reveal())
		}, key))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	call := secrets.WrapTool(st, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		v, err := secrets.ViewFrom(ctx, st).Get(ctx, key)
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		u, _ := v.Field("username")
		p, _ := v.Field("password")
		return struct{}{}, struct{}{}, login(ctx, u.Reveal(), p.Reveal())
	})
	calls := func(what string) {
		t.Helper()
		errs := make(chan error, 4)
		for range 4 {
			go func() { _, _, err := call(ctx, struct{}{}, struct{}{}); errs <- err }()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("a call failed %s: %v", what, err)
			}
		}
	}
	calls("before the rotation")
	token := e.rotate(t, arn)
	for _, step := range []string{stepCreate, stepSet, stepTest, stepFinish} {
		for try := range 2 { // Secrets Manager retries: each step is idempotent
			if err := e.step(ctx, arn, token, step); err != nil {
				t.Fatalf("%s (try %d): %v", step, try+1, err)
			}
			calls("after " + step)
		}
	}
	u, p := e.value(t, arn, "AWSCURRENT")
	if err := login(ctx, u, p); err != nil {
		t.Fatalf("AWSCURRENT does not log in: %v", err)
	}
	u, p = e.value(t, arn, "AWSPREVIOUS")
	if login(ctx, u, p) == nil {
		t.Fatal("AWSPREVIOUS still logs in after a single-user rotation")
	}
	if st := e.srv.Stages(arn); !slices.Equal(st[token], []string{"AWSCURRENT"}) {
		t.Fatalf("stages after finishSecret: %v", st)
	}
}

// TestAlternating rotates twice: to the clone user (created by setSecret),
// and back; the previous user keeps logging in.
func TestAlternating(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "alternating")
	role := uniq("app_alt")
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'old-alt-pw'")
	master := e.create(t, "db/master", dbJSON("postgres", pg.Password, nil))
	arn := e.create(t, "db/alt", dbJSON(role, "old-alt-pw", map[string]any{"masterarn": master}))
	for round, want := range []string{role + "_clone", role} {
		token := e.rotate(t, arn)
		for _, step := range []string{stepCreate, stepSet, stepTest, stepFinish} {
			for try := range 2 {
				if err := e.step(ctx, arn, token, step); err != nil {
					t.Fatalf("round %d %s (try %d): %v", round, step, try+1, err)
				}
			}
		}
		u, p := e.value(t, arn, "AWSCURRENT")
		if u != want || login(ctx, u, p) != nil {
			t.Fatalf("round %d: AWSCURRENT is user %q; logs in: %v", round, u, login(ctx, u, p))
		}
		u, p = e.value(t, arn, "AWSPREVIOUS")
		if err := login(ctx, u, p); err != nil {
			t.Fatalf("round %d: AWSPREVIOUS (%q) no longer logs in: %v", round, u, err)
		}
	}
}

// TestFailingTestSecret: a probe that fails stops the rotation at
// testSecret, retried or not; AWSCURRENT stays and logs in.
func TestFailingTestSecret(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "alternating")
	role := uniq("app_fail")
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'old-fail-pw'")
	master := e.create(t, "db/master", dbJSON("postgres", pg.Password, nil))
	arn := e.create(t, "db/fail", dbJSON(role, "old-fail-pw", map[string]any{"masterarn": master}))
	e.rot.Probe = func(context.Context, *pgx.Conn) error { return errors.New("the probe refuses") }
	token := e.rotate(t, arn)
	for _, step := range []string{stepCreate, stepSet} {
		if err := e.step(ctx, arn, token, step); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := e.step(ctx, arn, token, stepTest); err == nil {
			t.Fatal("testSecret succeeded with a failing probe")
		}
	}
	u, p := e.value(t, arn, "AWSCURRENT")
	if u != role || login(ctx, u, p) != nil {
		t.Fatal("AWSCURRENT changed or no longer logs in")
	}
}

// TestBadInput: each refusal is clear, and nothing changes.
func TestBadInput(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "single")
	noHost := e.create(t, "db/nohost", `{"engine":"postgres","username":"u","password":"pw-canary"}`)
	good := e.create(t, "db/good", dbJSON("nobody", "pw-canary", nil))
	e2 := newEnv(t, "alternating")
	noMaster := e2.create(t, "db/nomaster", dbJSON("nobody", "pw-canary", map[string]any{"masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-abcdef"}))
	cases := []struct {
		name string
		e    env
		arn  string
		tok  func(arn string) string
		step string
	}{
		{"missing host", e, noHost, func(a string) string { return e.rotate(t, a) }, stepCreate},
		{"unknown step", e, good, func(a string) string { return e.rotate(t, a) }, "deleteSecret"},
		{"token not a version", e, good, func(string) string { return "11111111-2222-4333-8444-555555555555" }, stepCreate},
		{"masterarn missing", e2, noMaster, func(a string) string {
			tok := e2.rotate(t, a)
			if err := e2.step(ctx, a, tok, stepCreate); err != nil {
				t.Fatal(err)
			}
			return tok
		}, stepSet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := c.tok(c.arn)
			before := c.e.srv.Versions(c.arn)
			err := c.e.step(ctx, c.arn, tok, c.step)
			if err == nil {
				t.Fatal("the step succeeded")
			}
			if strings.Contains(err.Error(), "pw-canary") {
				t.Fatalf("the error quotes a value: %v", err)
			}
			if after := c.e.srv.Versions(c.arn); len(after) != len(before) {
				t.Fatalf("the refused step changed the secret: %d versions, then %d", len(before), len(after))
			}
		})
	}
	// Rotation disabled: the template's check.
	off := e.create(t, "db/off", dbJSON("nobody", "pw-canary", nil))
	tok := e.rotate(t, off)
	if _, err := e.client.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(off)}); err != nil {
		t.Fatal(err)
	}
	if err := e.step(ctx, off, tok, stepCreate); err == nil || !errors.Is(err, errRefused) {
		t.Fatalf("createSecret with rotation disabled: %v", err)
	}
}
