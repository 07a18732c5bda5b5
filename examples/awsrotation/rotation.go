package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/awssm"
)

// The steps Secrets Manager sends, in order.
const (
	stepCreate = "createSecret"
	stepSet    = "setSecret"
	stepTest   = "testSecret"
	stepFinish = "finishSecret"
)

// Client is the part of *secretsmanager.Client the function calls.
type Client interface {
	awssm.WriteAPI
	GetRandomPassword(ctx context.Context, in *secretsmanager.GetRandomPasswordInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error)
}

// Rotator rotates RDS-style PostgreSQL secrets for Secrets Manager's four
// steps. Its fields are set once; Handle is safe for concurrent use.
type Rotator struct {
	// Client calls Secrets Manager.
	Client Client
	// Source stages and promotes versions (the same client underneath).
	Source *awssm.Source
	// Alternating selects AWS's alternating-users scheme (masterarn; a
	// "_clone" user); otherwise single-user.
	Alternating bool
	// Password is what GetRandomPassword is asked for.
	Password secretsmanager.GetRandomPasswordInput
	// SSLMode is the sslmode used when a secret has no "ssl" member
	// (default "prefer": TLS when the server offers it, as AWS's templates
	// fall back to plain connections).
	SSLMode string
	// Probe runs on a connection with the new credentials in testSecret
	// (nil: SELECT 1).
	Probe func(ctx context.Context, conn *pgx.Conn) error
	// Log receives one line per step; nil logs nothing. No line holds a
	// value.
	Log *slog.Logger
}

// stepError is a failed step; its message names the secret, the token and
// the step, never a value.
func stepError(ev events.SecretsManagerSecretRotationEvent, err error) error {
	return fmt.Errorf("%s %s (version %s): %w", ev.Step, ev.SecretID, ev.ClientRequestToken, err)
}

// errRefused is a step refused by the checks before it, with nothing changed.
var errRefused = errors.New("refused")

// Handle runs one step of a rotation. It checks first what AWS's templates
// check: the step is one of the four, rotation is enabled on the secret,
// the token is a version of it, and that version is AWSPENDING; a token
// already AWSCURRENT is a finished rotation and a no-op, except that a
// finishSecret that finds AWSPENDING still on it (an earlier finishSecret
// stopped between its two label moves) removes it. Every step is
// idempotent: Secrets Manager retries a step that failed or timed out.
func (r *Rotator) Handle(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	if !slices.Contains([]string{stepCreate, stepSet, stepTest, stepFinish}, ev.Step) {
		return fmt.Errorf("unknown step %q for secret %s: want createSecret, setSecret, testSecret or finishSecret", ev.Step, ev.SecretID)
	}
	if ev.SecretID == "" || ev.ClientRequestToken == "" {
		return fmt.Errorf("%s: the event lacks SecretId or ClientRequestToken", ev.Step)
	}
	d, err := r.Client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
	if err != nil {
		return stepError(ev, fmt.Errorf("describe: %w", err))
	}
	if d.RotationEnabled != nil && !*d.RotationEnabled {
		return stepError(ev, fmt.Errorf("%w: rotation is not enabled on the secret", errRefused))
	}
	stages, ok := d.VersionIdsToStages[ev.ClientRequestToken]
	switch {
	case !ok:
		return stepError(ev, fmt.Errorf("%w: the token is not a version of the secret", errRefused))
	case slices.Contains(stages, "AWSCURRENT") && ev.Step == stepFinish && slices.Contains(stages, "AWSPENDING"):
		// A finishSecret that moved AWSCURRENT and stopped before it
		// removed AWSPENDING: finish the removal.
		previous := ""
		for id, st := range d.VersionIdsToStages {
			if slices.Contains(st, "AWSPREVIOUS") {
				previous = id
			}
		}
		if err := r.Source.Promote(ctx, ev.SecretID, ev.ClientRequestToken, previous); err != nil {
			return stepError(ev, err)
		}
		r.log(ctx, ev, "the version is AWSCURRENT already: AWSPENDING removed")
		return nil
	case slices.Contains(stages, "AWSCURRENT"):
		r.log(ctx, ev, "the version is AWSCURRENT already: nothing to do")
		return nil
	case !slices.Contains(stages, "AWSPENDING"):
		return stepError(ev, fmt.Errorf("%w: the version is not AWSPENDING", errRefused))
	}
	current := ""
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, "AWSCURRENT") {
			current = id
		}
	}
	switch ev.Step {
	case stepCreate:
		err = r.create(ctx, ev, current)
	case stepSet:
		err = r.set(ctx, ev)
	case stepTest:
		err = r.test(ctx, ev)
	case stepFinish:
		err = r.finish(ctx, ev, current)
	}
	if err != nil {
		return stepError(ev, err)
	}
	r.log(ctx, ev, "done")
	return nil
}

func (r *Rotator) log(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, msg string) {
	if r.Log != nil {
		r.Log.InfoContext(ctx, msg, "step", ev.Step, "secret", ev.SecretID, "version", ev.ClientRequestToken)
	}
}

// get reads one version: by stage, or by id and stage.
func (r *Rotator) get(ctx context.Context, id, stage, version string) (secrets.Secret, dbSecret, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String(stage)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := r.Client.GetSecretValue(ctx, in)
	if err != nil {
		return secrets.Secret{}, dbSecret{}, fmt.Errorf("read %s: %w", stage, err)
	}
	if out.SecretString == nil {
		return secrets.Secret{}, dbSecret{}, fmt.Errorf("%w: version %s holds no SecretString", errBadSecret, aws.ToString(out.VersionId))
	}
	s := secrets.NewSecretString(id, aws.ToString(out.VersionId), *out.SecretString)
	db, err := parseDBSecret(s)
	return s, db, err
}

// create stages the new credential with the token as its version id,
// unless it holds one already.
func (r *Rotator) create(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, current string) error {
	_, cur, err := r.get(ctx, ev.SecretID, "AWSCURRENT", "")
	if err != nil {
		return err
	}
	_, _, err = r.get(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil:
		return nil // created by an earlier try
	case !errors.As(err, &nf):
		return err
	}
	user := cur.username
	if r.Alternating {
		if cur.masterARN == "" {
			return fmt.Errorf("%w: the alternating-users scheme needs \"masterarn\"", errBadSecret)
		}
		if user, err = altUsername(cur.username); err != nil {
			return err
		}
	}
	pw := r.Password
	out, err := r.Client.GetRandomPassword(ctx, &pw)
	if err != nil {
		return fmt.Errorf("GetRandomPassword: %w", err)
	}
	val, err := cur.with(user, aws.ToString(out.RandomPassword))
	if err != nil {
		return err
	}
	_, err = r.Source.Stage(ctx, ev.SecretID, secrets.StageRequest{Current: current, Value: val, Token: ev.ClientRequestToken})
	clear(val)
	return err
}

// target returns the rotor target for the pending secret, and for the
// alternating scheme makes sure the clone role exists.
func (r *Rotator) target(ctx context.Context, cur, pend dbSecret) (*rotate.Postgres, error) {
	mode := r.SSLMode
	if mode == "" {
		mode = "prefer"
	}
	if what := cur.otherDatabase(pend, true); what != "" {
		return nil, fmt.Errorf("%w: the pending version names another %s than the current one", errBadSecret, what)
	}
	t := &rotate.Postgres{DSN: pend.dsn(mode), Probe: r.Probe}
	if !r.Alternating {
		if cur.username != pend.username {
			return nil, fmt.Errorf("%w: the pending version names user %q, the current one %q", errBadSecret, pend.username, cur.username)
		}
		return t, nil
	}
	if alt, err := altUsername(cur.username); err != nil || alt != pend.username {
		return nil, fmt.Errorf("%w: the pending version names user %q, not the other user of %q", errBadSecret, pend.username, cur.username)
	}
	_, master, err := r.get(ctx, cur.masterARN, "AWSCURRENT", "")
	if err != nil {
		return nil, fmt.Errorf("the masterarn secret: %w", err)
	}
	// As AWS's template does, the master logs in to the user's database
	// (dbname), on the same server: host, port and engine.
	if what := cur.otherDatabase(master, false); what != "" {
		return nil, fmt.Errorf("%w: the masterarn secret names another %s than the current version", errBadSecret, what)
	}
	master.dbname = cur.dbname
	t.Admin = master.adminDSN(mode)
	t.Roles = []string{cur.username, pend.username}
	conn, err := pgx.Connect(ctx, t.Admin)
	if err != nil {
		return nil, fmt.Errorf("login with the masterarn secret: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := ensureClone(ctx, conn, cur.username, pend.username); err != nil {
		return nil, err
	}
	return t, nil
}

// ensureClone makes sure, in one transaction, that the clone role of the
// alternating pair exists and is a member of the base role, as AWS's
// template does when it creates the clone: the clone gets the base user's
// privileges by membership. Its password is set later, by Set, as a SCRAM
// verifier.
//
// Both are checked on every run, not only when the role is created: a
// setSecret cut short (a Lambda timeout, a lock_timeout) leaves nothing
// half done, since the transaction rolls back, and a clone left without
// the membership by an older version of this function gets it on the
// retry. The GRANT is sent only when the membership is missing, so a
// master that may create roles but not grant the base role again is not
// asked to.
func ensureClone(ctx context.Context, conn *pgx.Conn, curUser, pendUser string) error {
	base, clone := curUser, pendUser
	if strings.HasSuffix(curUser, cloneSuffix) {
		base, clone = pendUser, curUser
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists, member bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
			EXISTS (SELECT 1 FROM pg_auth_members m
				JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
				WHERE r.rolname = $2 AND u.rolname = $1)`, clone, base).Scan(&exists, &member)
		if err != nil {
			return fmt.Errorf("look up role %q: %w", clone, err)
		}
		id := pgx.Identifier{clone}.Sanitize()
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE ROLE "+id+" LOGIN"); err != nil {
				return fmt.Errorf("create role %q: %w", clone, err)
			}
		}
		if !member {
			if _, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{base}.Sanitize()+" TO "+id); err != nil {
				return fmt.Errorf("grant %q to %q: %w", base, clone, err)
			}
		}
		return nil
	})
}

// set makes the database accept the pending credential. Logging in with it
// first makes a retry, or a rotation whose setSecret ran already, a no-op.
// In the single-user scheme the user logs in with AWSCURRENT to change its
// password, and, when AWSCURRENT is refused, with AWSPREVIOUS, as AWS's
// template does.
func (r *Rotator) set(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	curS, cur, err := r.get(ctx, ev.SecretID, "AWSCURRENT", "")
	if err != nil {
		return err
	}
	pendS, pend, err := r.get(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	t, err := r.target(ctx, cur, pend)
	if err != nil {
		return err
	}
	if (&rotate.Postgres{DSN: t.DSN}).Verify(ctx, pendS) == nil {
		return nil
	}
	if err := r.stillPending(ctx, ev, curS.Version()); err != nil {
		return err
	}
	_, err = t.Set(ctx, curS, pendS)
	if err == nil || r.Alternating || !loginRefused(err) {
		return err
	}
	// As AWS's single-user template does: AWSCURRENT no longer logs in
	// (its value was changed by hand, or the database lost the password),
	// so log in with AWSPREVIOUS to set the pending password. Without it
	// the rotation would be stuck for good: Secrets Manager retries this
	// token, and RotateSecret refuses a new one while it is pending.
	prevS, prev, perr := r.get(ctx, ev.SecretID, "AWSPREVIOUS", "")
	if perr != nil {
		return err // no AWSPREVIOUS to fall back on: AWSCURRENT's refusal
	}
	if what := cur.otherDatabase(prev, true); what != "" || prev.username != cur.username {
		return fmt.Errorf("%w: AWSCURRENT does not log in, and AWSPREVIOUS names another user or database: %w", errBadSecret, err)
	}
	if err := r.stillPending(ctx, ev, curS.Version()); err != nil {
		return err
	}
	if _, perr := t.Set(ctx, prevS, pendS); perr != nil {
		return fmt.Errorf("neither AWSCURRENT nor AWSPREVIOUS logs in: %w", perr)
	}
	return nil
}

// loginRefused reports whether err is PostgreSQL refusing a login
// (invalid_password, invalid_authorization_specification).
func loginRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000")
}

// stillPending re-reads the labels right before set changes a password,
// and refuses unless the token is still AWSPENDING (and not AWSCURRENT) and
// AWSCURRENT is still on version current, the one set read. An invocation
// that stalled (a slow network, a frozen Lambda) while later invocations
// finished this rotation and others would otherwise set a password the
// database no longer expects: in the alternating scheme the user it
// changes may be the one AWSCURRENT names by then, which would be locked
// out; in the single-user scheme, the rotated user itself.
//
// What is left is the time between this DescribeSecret and the ALTER ROLE
// (one login and one statement), not the time since the step began. Secrets
// Manager runs one rotation of a secret at a time, so a later rotation's
// labels cannot move within that window unless someone also moves them by
// hand.
func (r *Rotator) stillPending(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, current string) error {
	d, err := r.Client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	st := d.VersionIdsToStages[ev.ClientRequestToken]
	if !slices.Contains(st, "AWSPENDING") || slices.Contains(st, "AWSCURRENT") {
		return fmt.Errorf("%w: the version is no longer AWSPENDING (a later invocation went on): nothing changed", errRefused)
	}
	if !slices.Contains(d.VersionIdsToStages[current], "AWSCURRENT") {
		return fmt.Errorf("%w: AWSCURRENT moved off version %s since this step read it: nothing changed", errRefused, current)
	}
	return nil
}

// finish makes the pending version current. Unlike AWS's templates, it
// first logs in with the pending credential (without the probe): a
// finishSecret sent before createSecret or setSecret took effect would
// otherwise make current a version that holds no value, or a password the
// database does not have, and in the single-user scheme lock every
// consumer out. Refused, it changes nothing, and Secrets Manager's retry
// after the missing steps succeeds.
func (r *Rotator) finish(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, current string) error {
	pendS, pend, err := r.get(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return fmt.Errorf("%w: the pending version has no value yet (createSecret has not run): %w", errRefused, err)
	}
	if err := (&rotate.Postgres{DSN: pend.dsn(r.sslMode())}).Verify(ctx, pendS); err != nil {
		return fmt.Errorf("%w: the pending credential does not log in (setSecret has not run): %w", errRefused, err)
	}
	return r.Source.Promote(ctx, ev.SecretID, ev.ClientRequestToken, current)
}

// sslMode is r.SSLMode or its default.
func (r *Rotator) sslMode() string {
	if r.SSLMode == "" {
		return "prefer"
	}
	return r.SSLMode
}

// test logs in with the pending credential and runs the probe.
func (r *Rotator) test(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	pendS, pend, err := r.get(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	return (&rotate.Postgres{DSN: pend.dsn(r.sslMode()), Probe: r.Probe}).Verify(ctx, pendS)
}
