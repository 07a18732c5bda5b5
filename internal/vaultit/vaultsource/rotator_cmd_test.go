package vaultsource_test

import (
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
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
)

// buildRotator builds examples/rotator of the main module (three levels
// above this file) into a temporary directory and returns the binary's path.
func buildRotator(t *testing.T) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate this test file")
	}
	dir := filepath.Join(filepath.Dir(here), "..", "..", "..", "examples", "rotator")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build the rotator: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rotator")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/rotator: %v\n%s", err, out)
	}
	return bin
}

// vaultEnv returns the environment of this process without its VAULT_*
// variables, plus extra.
func vaultEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestRotatorCommand runs the rotator command, as its own process, once
// over a KV v2 secret holding a PostgreSQL role's credentials, with Vault's
// address and a token with the documented rotation policy in VAULT_ADDR and
// VAULT_TOKEN: it exits 0, Vault's current version holds a new password
// that logs in while the old one is refused, the server named by the PID
// file gets SIGHUP, the webhook hears of the success, and no output holds a
// password.
func TestRotatorCommand(t *testing.T) {
	bin := buildRotator(t)
	srv := pgtest.Start(t)
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)

	const role, oldPassword = "rotcmd_app", "initial-rotcmd-app"
	super, err := pgx.Connect(ctx, srv.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, oldPassword)); err != nil {
		t.Fatal(err)
	}
	super.Close(context.Background())
	put(t, root, "secret", "rotcmd/db", map[string]any{"username": role, "password": oldPassword})
	v.WritePolicy(t, "rotator-cmd", readPolicy("secret", "rotcmd/")+writePolicy("secret", "rotcmd/"))
	token := tokenWith(t, root, "rotator-cmd")

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

	cmd := exec.Command(bin,
		"-vault", "secret/rotcmd/db",
		"-db", fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable&connect_timeout=10", srv.Host, srv.Port),
		"-ttl", "100ms", "-poll", "100ms", "-lease", "1m",
		"-sighup-pidfile", pidFile)
	cmd.Env = vaultEnv("VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+token, "ROTOR_WEBHOOK_URL="+hook.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rotator: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rotated vault secret/rotcmd/db: version 2 replaced 1") {
		t.Fatalf("rotator output:\n%s", out)
	}

	// Vault: version 2 is current through the source, and is the latest
	// version as other tools see it; nothing pending, the record closed.
	c, _ := newClient(t, v, token)
	src := newSource(t, c)
	got := mustFetch(t, src, "secret/rotcmd/db")
	if got.Current.Version() != "2" || got.Previous.Version() != "1" || !got.Pending.IsZero() {
		t.Fatalf("current %s, previous %s, pending %q", got.Current.Version(), got.Previous.Version(), got.Pending.Version())
	}
	if rec, err := src.LoadRotation(ctx, "secret/rotcmd/db"); err != nil || !rec.Step.Terminal() {
		t.Fatalf("the rotation record is at %q (err %v)", rec.Step, err)
	}
	latest, err := root.KVv2("secret").Get(ctx, "rotcmd/db")
	if err != nil {
		t.Fatal(err)
	}
	var cur struct{ Username, Password string }
	if err := json.Unmarshal(got.Current.Bytes(), &cur); err != nil {
		t.Fatal("the current version is not the credentials' JSON")
	}
	if latest.VersionMetadata.Version != 2 || latest.Data["password"] != cur.Password {
		t.Fatalf("vault kv get shows version %d, not the current one", latest.VersionMetadata.Version)
	}
	if cur.Username != role || cur.Password == oldPassword || cur.Password == "" {
		t.Fatal("the current version does not hold a new password for the role")
	}

	// PostgreSQL: the new password logs in, the old one is refused.
	if err := login(ctx, srv, got.Current); err != nil {
		t.Fatalf("the new password does not log in: %v", err)
	}
	if err := login(ctx, srv, got.Previous); err == nil {
		t.Fatal("the old password still logs in")
	}

	for _, s := range []string{oldPassword, cur.Password, token} {
		if strings.Contains(string(out), s) {
			t.Fatalf("the rotator's output holds a secret:\n%s", out)
		}
	}
	select {
	case <-hup:
	case <-ctx.Done():
		t.Fatal("no SIGHUP")
	}
	select {
	case body := <-posts:
		if !strings.Contains(body, `"outcome":"succeeded"`) {
			t.Fatalf("webhook body %s", body)
		}
		if strings.Contains(body, oldPassword) || strings.Contains(body, cur.Password) {
			t.Fatal("the webhook body holds a password")
		}
	case <-ctx.Done():
		t.Fatal("no webhook post")
	}
}
