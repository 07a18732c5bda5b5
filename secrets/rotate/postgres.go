package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotorhq/rotor/secrets"
)

// Postgres is a Target that rotates the password of a PostgreSQL role, or of
// a pair of roles used in turn.
//
// The secret is a JSON object with at least "username" and "password"
// members (other members, such as "host" or "dbname", are kept as they
// are), the shape AWS Secrets Manager uses for database secrets:
//
//	{"username": "app", "password": "..."}
//
// # Single role
//
// With Roles empty, the role named by "username" gets a new password. The old
// password stops working at the set step, so consumers rely on the pending
// version in between (the Store tries it after an authentication failure);
// sessions already open stay open. When Admin is empty the role changes its
// own password (ALTER ROLE CURRENT_USER), logging in with the password the
// store holds, so no administrator credential is needed.
//
// # Alternating roles
//
// With Roles set to two role names (created beforehand with the same grants,
// for instance both members of one group role that owns the objects), each
// rotation gives a new password to the role not named by the current
// secret, and the new secret names that role: consumers move from one role
// to the other while the old one keeps working through the overlap. Revoke
// then gives the old role a random password nobody knows. This needs Admin:
// a role allowed to ALTER ROLE both (a superuser, or CREATEROLE with ADMIN
// OPTION on them).
//
// # The password never reaches the server
//
// ALTER ROLE cannot take a bound parameter, and a password written into the
// statement would appear in the server log when log_statement or an error
// logs it, and in pg_stat_statements. The target sends a SCRAM-SHA-256
// verifier instead, computed on the client with a fresh salt, as psql's
// \password does: the server stores it as given, and what a log can show is
// a salted hash, never the password. The role name is quoted with
// pgx.Identifier.
//
// # Deadlines
//
// Every ALTER ROLE is preceded by SET statement_timeout and lock_timeout
// to what is left of ctx's deadline, the end of the Agent's step: the
// server stops the statement by then even when the agent that sent it has
// died, so a write stuck behind a lock cannot land after another agent
// took the rotation over (see WithLease).
type Postgres struct {
	// DSN is the connection string used to log in with a secret's
	// credentials (host, port, dbname, sslmode; any user or password in it
	// is replaced by the secret's). Required.
	DSN string
	// Admin, when set, is the connection string of a role that may change
	// the rotated roles' passwords. Required for alternating roles.
	Admin string
	// Roles names the two roles of the alternating scheme; empty for a
	// single role.
	Roles []string
	// Policy describes the new passwords (zero: PasswordPolicy's defaults).
	Policy PasswordPolicy
	// Probe runs on a connection made with the new credentials to verify
	// them (nil: SELECT 1). An error makes the rotation roll back.
	Probe func(ctx context.Context, conn *pgx.Conn) error
}

var _ Target = (*Postgres)(nil)

// pgCred is the part of a database secret the target uses.
type pgCred struct {
	user, password string
	doc            map[string]json.RawMessage
}

func parseCred(s secrets.Secret) (pgCred, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(s.Bytes(), &doc); err != nil || doc == nil {
		return pgCred{}, fmt.Errorf("%w: version %s is not a JSON object", ErrNotRotatable, s.Version())
	}
	var c pgCred
	c.doc = doc
	if err := json.Unmarshal(doc["username"], &c.user); err != nil || c.user == "" {
		return pgCred{}, fmt.Errorf("%w: version %s has no \"username\" string", ErrNotRotatable, s.Version())
	}
	if err := json.Unmarshal(doc["password"], &c.password); err != nil || c.password == "" {
		return pgCred{}, fmt.Errorf("%w: version %s has no \"password\" string", ErrNotRotatable, s.Version())
	}
	return c, nil
}

func (p *Postgres) alternating() bool { return len(p.Roles) > 0 }

func (p *Postgres) connect(ctx context.Context, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: the target's DSN does not parse", ErrNotRotatable)
	}
	cfg.User, cfg.Password = user, password
	return pgx.ConnectConfig(ctx, cfg)
}

func (p *Postgres) admin(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.Admin)
	if err != nil {
		return nil, fmt.Errorf("%w: the admin DSN does not parse", ErrNotRotatable)
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// authFailed reports whether err is PostgreSQL refusing a login
// (invalid_password, invalid_authorization_specification).
func authFailed(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000")
}

// Check parses current and logs in with it; see Target.
func (p *Postgres) Check(ctx context.Context, current secrets.Secret) error {
	if p.alternating() && (len(p.Roles) != 2 || p.Roles[0] == p.Roles[1] || p.Admin == "") {
		return fmt.Errorf("%w: alternating roles need two distinct role names and an admin DSN", ErrNotRotatable)
	}
	c, err := parseCred(current)
	if err != nil {
		return err
	}
	if p.alternating() && !slices.Contains(p.Roles, c.user) {
		return fmt.Errorf("%w: the secret names role %q, which is not one of the alternating pair", ErrNotRotatable, c.user)
	}
	if p.Admin != "" {
		conn, err := p.admin(ctx)
		if err != nil {
			return fmt.Errorf("admin login: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		roles := []string{c.user}
		if p.alternating() {
			roles = p.Roles
		}
		for _, r := range roles {
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", r).Scan(&n); err != nil {
				return fmt.Errorf("admin: %w", err)
			}
			if n == 0 {
				return fmt.Errorf("%w: role %q does not exist", ErrNotRotatable, r)
			}
		}
	}
	conn, err := p.connect(ctx, c.user, c.password)
	if err != nil {
		if authFailed(err) {
			return fmt.Errorf("%w: the database refuses the current credential of role %q: %w", ErrNotRotatable, c.user, err)
		}
		return fmt.Errorf("login: %w", err)
	}
	return conn.Close(ctx)
}

// Next returns current's document with a new password and, for
// alternating roles, the other role; see Target.
func (p *Postgres) Next(ctx context.Context, current secrets.Secret) ([]byte, error) {
	c, err := parseCred(current)
	if err != nil {
		return nil, err
	}
	pw, err := p.Policy.Password()
	if err != nil {
		return nil, err
	}
	user := c.user
	if p.alternating() {
		user = p.Roles[0]
		if c.user == p.Roles[0] {
			user = p.Roles[1]
		}
	}
	c.doc["username"], _ = json.Marshal(user)
	c.doc["password"], _ = json.Marshal(pw)
	return json.Marshal(c.doc)
}

// serverDeadline gives the server ctx's deadline, if it has one, as the
// session's statement_timeout and lock_timeout, so that the server stops a
// statement at that deadline on its own: the Agent's step ends there, and
// an agent that died (and cannot send a cancel request) must not have a
// statement, stuck behind a lock, take effect after another agent took the
// rotation over.
func serverDeadline(ctx context.Context, conn *pgx.Conn) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	ms := time.Until(dl).Milliseconds()
	if ms < 1 {
		return context.DeadlineExceeded
	}
	_, err := conn.Exec(ctx, fmt.Sprintf("SET statement_timeout = %d; SET lock_timeout = %d", ms, ms), pgx.QueryExecModeSimpleProtocol)
	return err
}

// alterPassword sets role's password on conn by its SCRAM verifier, within
// ctx's deadline on the server too (serverDeadline).
func alterPassword(ctx context.Context, conn *pgx.Conn, role, password string, self bool) error {
	v, err := scramVerifier(password)
	if err != nil {
		return err
	}
	if err := serverDeadline(ctx, conn); err != nil {
		return fmt.Errorf("alter role %q: %w", role, err)
	}
	target := pgx.Identifier{role}.Sanitize()
	if self {
		target = "CURRENT_USER"
	}
	// The verifier holds base64, '$' and ':' only: nothing that needs
	// escaping in a string literal.
	_, err = conn.Exec(ctx, "ALTER ROLE "+target+" PASSWORD '"+v+"'", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("alter role %q: %w", role, err)
	}
	return nil
}

// Set gives the pending role its new password; see Target. For a single
// role it records the server time of the change (note "set_at"), so that
// InUse counts the sessions opened before it.
func (p *Postgres) Set(ctx context.Context, current, pending secrets.Secret) (map[string]string, error) {
	cur, err := parseCred(current)
	if err != nil {
		return nil, err
	}
	next, err := parseCred(pending)
	if err != nil {
		return nil, err
	}
	var conn *pgx.Conn
	self := p.Admin == ""
	if self {
		// Log in as the role: with the current password, or with the new
		// one if an earlier run set it already.
		conn, err = p.connect(ctx, cur.user, cur.password)
		if err != nil && authFailed(err) {
			conn, err = p.connect(ctx, next.user, next.password)
		}
	} else {
		conn, err = p.admin(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var now time.Time
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return nil, err
	}
	if err := alterPassword(ctx, conn, next.user, next.password, self); err != nil {
		return nil, err
	}
	notes := map[string]string{"role": next.user}
	if p.alternating() {
		notes["old_role"] = cur.user
	} else {
		notes["set_at"] = now.UTC().Format(time.RFC3339Nano)
	}
	return notes, nil
}

// Verify logs in with pending and runs the probe; see Target.
func (p *Postgres) Verify(ctx context.Context, pending secrets.Secret) error {
	c, err := parseCred(pending)
	if err != nil {
		return err
	}
	conn, err := p.connect(ctx, c.user, c.password)
	if err != nil {
		return fmt.Errorf("login as %q with the new password: %w", c.user, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if p.Probe != nil {
		return p.Probe(ctx, conn)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// Restore gives the role of current its current password again and, for
// alternating roles, makes the pending role's password useless; see Target.
func (p *Postgres) Restore(ctx context.Context, current, pending secrets.Secret) error {
	cur, err := parseCred(current)
	if err != nil {
		return err
	}
	if p.Admin == "" {
		// Already current? Then there is nothing to undo.
		conn, err := p.connect(ctx, cur.user, cur.password)
		if err == nil {
			return conn.Close(ctx)
		}
		if !authFailed(err) {
			return fmt.Errorf("login: %w", err)
		}
		next, perr := parseCred(pending)
		if perr != nil {
			return fmt.Errorf("the current password is refused and the pending one is unknown: %w", err)
		}
		conn, err = p.connect(ctx, next.user, next.password)
		if err != nil {
			return fmt.Errorf("login with the pending password to restore the current one: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return alterPassword(ctx, conn, cur.user, cur.password, true)
	}
	conn, err := p.admin(ctx)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := alterPassword(ctx, conn, cur.user, cur.password, false); err != nil {
		return err
	}
	if next, err := parseCred(pending); err == nil && next.user != cur.user {
		return scramble(ctx, conn, next.user)
	}
	return nil
}

// scramble gives role a random password that nobody keeps.
func scramble(ctx context.Context, conn *pgx.Conn, role string) error {
	pw, err := PasswordPolicy{Length: 48}.Password()
	if err != nil {
		return err
	}
	return alterPassword(ctx, conn, role, pw, false)
}

// InUse counts the sessions of the replaced credential: for alternating
// roles, every session of the old role; for a single role, the sessions of
// the role opened before the password changed. See Target.
func (p *Postgres) InUse(ctx context.Context, old, current secrets.Secret, notes map[string]string) (int, error) {
	cur, err := parseCred(current)
	if err != nil {
		return 0, err
	}
	var conn *pgx.Conn
	if p.Admin != "" {
		conn, err = p.admin(ctx)
	} else {
		conn, err = p.connect(ctx, cur.user, cur.password)
	}
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if p.alternating() {
		role := notes["old_role"]
		if role == "" {
			return -1, nil
		}
		err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", role).Scan(&n)
	} else {
		setAt, perr := time.Parse(time.RFC3339Nano, notes["set_at"])
		if perr != nil {
			return -1, nil
		}
		err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND backend_start < $2 AND pid <> pg_backend_pid()", cur.user, setAt).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	return n, nil
}

// Revoke gives the old role of an alternating pair a random password; for a
// single role the old password stopped working when the new one was set, so
// there is nothing to do. See Target.
func (p *Postgres) Revoke(ctx context.Context, old, current secrets.Secret, notes map[string]string) error {
	if !p.alternating() {
		return nil
	}
	role := notes["old_role"]
	cur, err := parseCred(current)
	if err != nil {
		return err
	}
	if role == "" || role == cur.user {
		return nil
	}
	conn, err := p.admin(ctx)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return scramble(ctx, conn, role)
}

// String names the target for logs.
func (p *Postgres) String() string {
	if p.alternating() {
		return "postgres (alternating " + strconv.Quote(p.Roles[0]) + ", " + strconv.Quote(p.Roles[1]) + ")"
	}
	return "postgres (single role)"
}
