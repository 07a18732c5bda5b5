package vaultsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// vaultAdmin is the PostgreSQL role through which Vault's database engine
// manages roles in the database tests: it may create roles and nothing more,
// so that a test can take that away ("the database refusing new users").
const vaultAdmin = "vault_admin"

// dbEnv is a real Vault whose database engine, mounted at database/, reaches
// a real PostgreSQL through the connection "pg".
type dbEnv struct {
	v    *vaulttest.Server
	pg   *pgtest.Server
	root *api.Client
}

// startDB starts PostgreSQL and Vault and connects Vault's database engine to
// PostgreSQL as vaultAdmin.
func startDB(t *testing.T) *dbEnv {
	t.Helper()
	pg := pgtest.Start(t)
	v := vaulttest.Start(t)
	e := &dbEnv{v: v, pg: pg, root: v.Client(t)}
	e.superExec(t, fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEROLE PASSWORD 'admin-pw'`, vaultAdmin))
	v.MountDatabase(t, "database")
	v.ConnectPostgres(t, "database", "pg", vaulttest.Postgres{Host: pg.Host, Port: pg.Port, Username: vaultAdmin, Password: "admin-pw"})
	return e
}

// superExec runs statements as PostgreSQL's superuser.
func (e *dbEnv) superExec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, e.pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// roleExists reports whether PostgreSQL has a role called name.
func (e *dbEnv) roleExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, e.pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// leases returns the ids of the leases Vault holds under prefix
// ("database/creds/app").
func (e *dbEnv) leases(t *testing.T, prefix string) []string {
	t.Helper()
	sec, err := e.root.Logical().List("sys/leases/lookup/" + prefix + "/")
	if err != nil {
		t.Fatalf("list the leases of %s: %v", prefix, err)
	}
	if sec == nil {
		return nil
	}
	raw, _ := sec.Data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		out = append(out, fmt.Sprint(k))
	}
	return out
}

// staticRotation returns what Vault says of a static role now: the time of
// its last rotation and its password.
func (e *dbEnv) staticRotation(t *testing.T, role string) (last, password string) {
	t.Helper()
	sec, err := e.root.Logical().Read("database/static-creds/" + role)
	if err != nil || sec == nil {
		t.Fatalf("read database/static-creds/%s: %v", role, err)
	}
	last, _ = sec.Data["last_vault_rotation"].(string)
	password, _ = sec.Data["password"].(string)
	return last, password
}

// appToken returns a token whose policy reads the database engine's
// credentials and, through Vault's default policy, renews and looks up
// leases; with revoke set, it may also revoke leases.
func (e *dbEnv) appToken(t *testing.T, revoke bool) string {
	t.Helper()
	e.v.WritePolicy(t, "db-app", dbAppPolicy)
	e.v.WritePolicy(t, "db-revoke", `path "sys/leases/revoke" { capabilities = ["update"] }`)
	if revoke {
		return tokenWith(t, e.root, "db-app", "db-revoke")
	}
	return tokenWith(t, e.root, "db-app")
}

// noRenewToken returns a token that may read and revoke the credentials
// but has no default policy: it may neither renew nor look up a lease.
func (e *dbEnv) noRenewToken(t *testing.T) string {
	t.Helper()
	e.v.WritePolicy(t, "db-app", dbAppPolicy)
	e.v.WritePolicy(t, "db-revoke", `path "sys/leases/revoke" { capabilities = ["update"] }`)
	sec, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"db-app", "db-revoke"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// dbAppPolicy is what a consumer of the database engine needs besides
// Vault's default policy (which renews and looks up leases).
const dbAppPolicy = `
path "database/creds/*"        { capabilities = ["read"] }
path "database/static-creds/*" { capabilities = ["read"] }
`

// pair is a database credential as the source serves it.
type pair struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func pairOf(t *testing.T, s secrets.Secret) pair {
	t.Helper()
	var p pair
	if err := json.Unmarshal(s.Bytes(), &p); err != nil {
		t.Fatalf("the value of %s is not a JSON pair: %v", s.Key(), err)
	}
	if p.Username == "" || p.Password == "" {
		t.Fatalf("the value of %s lacks a username or a password", s.Key())
	}
	return p
}

// loginAs logs in to PostgreSQL with p and asks who it is.
func (e *dbEnv) loginAs(ctx context.Context, p pair) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=30", e.pg.Host, e.pg.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = p.Username, p.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
		return err
	}
	if who != p.Username {
		return fmt.Errorf("logged in as %q, not %q", who, p.Username)
	}
	return nil
}

// leaseLog records a source's lease events, with the time each came, and
// lets a test wait for them.
type leaseLog struct {
	mu   sync.Mutex
	evs  []vault.LeaseEvent
	at   []time.Time
	now  func() time.Time
	note chan struct{}
}

func newLeaseLog(now func() time.Time) *leaseLog {
	return &leaseLog{now: now, note: make(chan struct{}, 1)}
}

func (l *leaseLog) record(ev vault.LeaseEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.at = append(l.at, l.now())
	l.mu.Unlock()
	select {
	case l.note <- struct{}{}:
	default:
	}
}

func (l *leaseLog) count(kind vault.LeaseEventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// waitCount waits until n events of kind have been recorded.
func (l *leaseLog) waitCount(t *testing.T, ctx context.Context, kind vault.LeaseEventKind, n int) {
	t.Helper()
	for l.count(kind) < n {
		select {
		case <-l.note:
		case <-ctx.Done():
			t.Fatalf("waiting for %d %v lease events: %v; have %s", n, kind, ctx.Err(), l)
		}
	}
}

// end returns when the lease of the pair version ends, as its last event
// with a TTL (created or renewed) reckons it.
func (l *leaseLog) end(version string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var end time.Time
	for i, ev := range l.evs {
		if ev.Version == version && (ev.Kind == vault.LeaseCreated || ev.Kind == vault.LeaseRenewed) {
			end = l.at[i].Add(ev.TTL)
		}
	}
	return end, !end.IsZero()
}

func (l *leaseLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ev := range l.evs {
		fmt.Fprintf(&b, "[%v %s ttl=%v err=%v] ", ev.Kind, ev.Version, ev.TTL, ev.Err)
	}
	return b.String()
}

// noSecretIn fails the test if err's text holds one of the values.
func noSecretIn(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Fatalf("an error holds a credential: %v", err)
		}
	}
}

// classOf names the class of package secrets that err wraps.
func classOf(err error) string {
	for _, c := range []error{secrets.ErrNotFound, secrets.ErrPermission, secrets.ErrTransient, secrets.ErrInvalid, secrets.ErrClosed} {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return "unclassified"
}

// waitFor polls cond, a look at Vault's or PostgreSQL's state, until it
// holds: what it waits for happens in a server's background, which sends
// no event.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
