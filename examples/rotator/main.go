// Command rotator rotates the password of a PostgreSQL role whose
// credentials are kept either in a file, the db.json that examples/mcpserver
// (and any server reading it with sources/file) uses, or in a Vault KV v2
// secret (read by servers through sources/vault), as
//
//	{"username": "app", "password": "..."}
//
// It runs the rotation agent of package secrets/rotate: a new password is
// staged (a pending file beside db.json, or a new KV version marked pending
// in the secret's custom metadata; never served as current), set on the
// database, verified by logging in, promoted (an atomic rename, or the
// metadata marks naming the new version current), and the old one is
// retired after the consumers' overlap. Every step is recorded in the store
// (a hidden file beside db.json, or the KV v2 secret PATH.rotation), so a
// rotator killed at any point and started again finishes or undoes the
// rotation (once the record has stayed unchanged for -lease), and two
// rotators never rotate one credential at once. Run it with -h for the
// flags.
//
//	rotator -secrets /etc/app -db postgres://db:5432/app -ttl 1m                  # once, single role, file
//	VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... \
//	  rotator -vault secret/mcp/db -db postgres://db:5432/app -ttl 1m             # once, single role, Vault KV v2
//	ROTOR_ADMIN_DSN=postgres://admin:...@db:5432/app \
//	  rotator -secrets /etc/app -db postgres://db:5432/app -roles app_a,app_b -every 720h -sighup-pidfile /run/app.pid
//
// With -consumer or -consumer-dns it revokes the old credential only once
// every server's status endpoint (secrets.Store.StatusHandler; the -status
// flag of examples/mcpserver) reports the new version, or the overlap
// deadline has passed (see rotate.WithConsumers):
//
//	rotator -vault 'secret/mcp/server?field=db.json' -db postgres://db:5432/app -ttl 1m \
//	  -consumer-dns http://mcpserver-status.mcp.svc.cluster.local:9090/status \
//	  -consumer-key file:///var/run/secrets/rotor/db.json -consumer-version content
//
// With -vault, the Vault address, token and TLS settings come from the
// environment exactly as the vault command takes them (VAULT_ADDR,
// VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, ...; see
// sources/vault.NewFromEnv), never from flags. The token needs the rotation
// policy that package sources/vault documents. KV v1 mounts keep no
// versions and cannot be rotated into.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/file"
	"github.com/rotorhq/rotor/sources/vault"
)

// The environment variables the rotator reads. Credentials come from the
// environment, never from flags, which other users see in ps.
const (
	// AdminDSNEnv holds the connection string of a role allowed to ALTER
	// ROLE the rotated roles. Required for -roles; optional for a single
	// role, which then changes its own password.
	AdminDSNEnv = "ROTOR_ADMIN_DSN"
	// WebhookEnv holds a URL to POST the outcome of each rotation to (a
	// Slack-compatible JSON message). Optional.
	WebhookEnv = "ROTOR_WEBHOOK_URL"
	// StopAtEnv, for crash drills, names a step ("staged", "set",
	// "verified", "promoted", "overlapped") at which the rotator stops
	// once the step is recorded ("set,unrecorded": once it took effect,
	// before it is recorded), prints "stopped at STEP" and waits to be
	// killed.
	StopAtEnv = "ROTOR_ROTATOR_STOP_AT"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1 // failed or stopped part-way: run again to resume
	exitUsage      = 2
	exitRolledBack = 3 // the new password failed; the old one stays
	exitInProgress = 4 // another rotator holds the file's rotation
)

const usageText = `rotator rotates the password of a PostgreSQL role kept as JSON
({"username": ..., "password": ...}) in a file (-secrets DIR, as
examples/mcpserver's db.json) or in a Vault KV v2 secret (-vault PATH).

Each rotation: a new random password is staged beside the file (hidden file
.NAME.rotor-pending; servers reading the file are not served it), set on the
database, verified by logging in, then renamed over the file. The rotator
then waits the overlap (at least 3 x -ttl, and until no session of the old
credential is left, up to -overlap-deadline) so that every server has picked
the new password up, and revokes the old credential. A failed login rolls back:
the database is given the password the file holds again. Every step is
recorded in .NAME.rotor-rotation: a rotator killed at any point and started
again finishes or undoes the rotation, and only one rotation of a file runs
at a time.

Vault KV v2 (-vault secret/mcp/db, the path as "vault kv get" takes it):
the new password is staged as a new KV version marked pending in the
secret's custom metadata (servers reading through rotor's vault source are
not served it as current; "vault kv get" shows the latest version, so pin -version
there), and promoted by marking it current. The record is the KV v2 secret
PATH.rotation. The Vault address and token come from the environment, as
the vault command takes them (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
VAULT_CACERT, ...), never from flags. The token needs, on the secret and
its .rotation record: data create/read/update, metadata read/patch, delete
update (see package sources/vault).

Consumers (-consumer URL, -consumer-dns URL): the servers' status endpoints
(secrets.Store.StatusHandler; examples/mcpserver -status ADDR serves one at
/status). Past the overlap the rotator reads each one every -poll and revokes
the old credential only once all of them report the new version of the key,
or -overlap-deadline has passed (then it revokes anyway and logs, as a
warning, which servers had not switched and why). -consumer names one
endpoint; -consumer-dns names a host that resolves to every server (a
Kubernetes headless Service with publishNotReadyAddresses), looked up again
at every poll, and asks each address (with https, each server's
certificate must then name its IP address). -consumer-key is the key as the servers' Stores name it
(default: file://FILE for -secrets, vault://PATH for -vault), and
-consumer-version says how they read it: "id" (default) when they read the
same file or the same Vault secret through rotor, "content" when they read
a copy of the value as a file (a Kubernetes Secret volume, a CSI mount, a
file Vault Agent renders), "content:FIELD" when the file holds one field of
it.

A rotator that finds a rotation recorded (by another rotator, or by one
that was killed, whatever its -owner) watches the record for -lease first:
if the record is saved meanwhile, its rotator is alive and this one exits
with status 4; if not, this one takes the rotation over. So a rotator
started again after a crash resumes after -lease, not at once.

Single role (default): the role named in the file changes its own password,
or is changed by $ROTOR_ADMIN_DSN's role if set. Sessions already open stay
open; new logins need the new password from the moment it is set, so the
servers must try the pending password after a failed login (rotor's Store
does).

Alternating roles (-roles a,b): two roles with the same grants; each
rotation sets a new password on the role not in use and switches the secret to
it; the old role keeps working through the overlap, then gets a random
password. Needs $ROTOR_ADMIN_DSN.

Usage:
  rotator -secrets DIR -db URL -ttl DURATION [flags]
  rotator -vault PATH[?field=NAME] -db URL -ttl DURATION [flags]

Exactly one of -secrets and -vault.

Examples:
  rotator -secrets /etc/app -db postgres://db:5432/app -ttl 1m
  VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... rotator -vault secret/mcp/db \
      -db postgres://db:5432/app -ttl 1m
  ROTOR_ADMIN_DSN=postgres://admin@db:5432/app rotator -secrets /etc/app \
      -db postgres://db:5432/app -ttl 1m -roles app_a,app_b -every 720h -jitter 24h \
      -sighup-pidfile /run/mcpserver.pid

Environment:
  ROTOR_ADMIN_DSN    connection string of a role that may ALTER ROLE the rotated
                     roles (required with -roles)
  ROTOR_WEBHOOK_URL  URL to POST each outcome to (Slack-compatible "text" field)
  VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, ...
                     with -vault: how to reach Vault, as for the vault command

Exit status: 0 rotated; 1 failed or stopped part-way (run again to resume);
2 bad flags; 3 rolled back (the old password stays); 4 another rotator is
rotating this credential (or this one was stopped while it watched the record).

Flags:
`

// options are the parsed flags.
type options struct {
	dir, key     string
	vaultPath    string
	dbURL        string
	roles        []string
	ttl          time.Duration
	overlap      time.Duration
	deadline     time.Duration
	every        time.Duration
	jitter       time.Duration
	pidFile      string
	owner        string
	lease        time.Duration
	poll         time.Duration
	passwordSize int
	consumers    []string // status endpoints
	consumerDNS  []string // status endpoint URLs whose host resolves to every server
	consumerKey  string
	consumerVer  string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parse parses the command line; it writes usage and errors to stderr.
func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var roles string
	fs := flag.NewFlagSet("rotator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.dir, "secrets", "", "directory holding the credentials file (the servers' -secrets directory); required")
	fs.StringVar(&o.key, "key", "db.json", "name of the credentials file in -secrets")
	fs.StringVar(&o.vaultPath, "vault", "", "instead of -secrets: the KV v2 path of the credentials secret as \"vault kv get\" takes it, mount first, e.g. secret/mcp/db, or secret/mcp/server?field=db.json for a field holding the credentials' JSON; Vault's address and token come from $VAULT_ADDR and $VAULT_TOKEN")
	fs.StringVar(&o.dbURL, "db", "", "PostgreSQL URL without credentials, e.g. postgres://db:5432/app?sslmode=require; the rotator logs in with the file's credentials to verify them; required")
	fs.StringVar(&roles, "roles", "", "two roles to alternate between, e.g. app_a,app_b (default: rotate the single role named in the file)")
	fs.DurationVar(&o.ttl, "ttl", 0, "the servers' refresh interval (their Store TTL, mcpserver's -ttl): how late a server may pick up a new password; required")
	fs.DurationVar(&o.overlap, "overlap", 0, "how long the old password keeps working after the new one is promoted (default and minimum: 3 x -ttl)")
	fs.DurationVar(&o.deadline, "overlap-deadline", 0, "the longest wait, after the promotion (or, for a rotator that took over a rotation left by another, after its takeover), for sessions of the old credential to end and every -consumer to report the new version, before the old credential is revoked anyway, with a warning (default: 4 x -overlap)")
	fs.DurationVar(&o.every, "every", 0, "rotate whenever the password is older than this, until stopped (e.g. 720h); 0 rotates once and exits")
	fs.DurationVar(&o.jitter, "jitter", 0, "with -every: rotate up to this much earlier, at random, so that many files do not rotate at once")
	fs.StringVar(&o.pidFile, "sighup-pidfile", "", "file holding the PID of a server to send SIGHUP once the new password is promoted, so it reloads at once")
	fs.StringVar(&o.owner, "owner", "", "the name this rotator records as the owner of a rotation, for the record and the logs (default: host/pid/random). It grants nothing: a rotator started again under the same name waits -lease before it resumes, like any other, since a name cannot prove that the earlier process stopped")
	fs.DurationVar(&o.lease, "lease", rotate.DefaultLease, "how long a recorded rotation keeps other rotators out after its rotator stops saving it (it crashed): a rotator finding one watches it this long before taking it over. Each step (a login, an ALTER ROLE) must finish within 3/4 of it")
	fs.DurationVar(&o.poll, "poll", rotate.DefaultPollInterval, "during the overlap, how often to check whether sessions of the old credential remain and to ask the -consumer endpoints")
	fs.IntVar(&o.passwordSize, "password-length", 0, "length of the new passwords, at least 16 (default 32)")
	fs.Func("consumer", "a server's status endpoint, e.g. http://10.0.0.5:9090/status (repeatable): revoke the old credential only once every one reports the new version, or -overlap-deadline has passed", func(v string) error {
		o.consumers = append(o.consumers, v)
		return nil
	})
	fs.Func("consumer-dns", "a status endpoint URL whose host name resolves to every server, e.g. http://mcpserver-status.mcp.svc.cluster.local:9090/status for a headless Service (repeatable); looked up again at every poll", func(v string) error {
		o.consumerDNS = append(o.consumerDNS, v)
		return nil
	})
	fs.StringVar(&o.consumerKey, "consumer-key", "", "the key as the servers' Stores name it in their status documents, e.g. file:///var/run/secrets/rotor/db.json (default: file://FILE for -secrets, vault://PATH for -vault)")
	fs.StringVar(&o.consumerVer, "consumer-version", "id", "how the servers read the key, so which version id they report: id (the same file or Vault secret, through rotor), content (a copy of the value as a file: a Secret volume, a CSI mount, a Vault Agent template), content:FIELD (a file holding one field)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	keySet, consumerOptSet := false, false
	fs.Visit(func(f *flag.Flag) {
		keySet = keySet || f.Name == "key"
		consumerOptSet = consumerOptSet || f.Name == "consumer-key" || f.Name == "consumer-version"
	})
	switch {
	case o.dir == "" && o.vaultPath == "":
		problems = append(problems, "one of -secrets and -vault is required")
	case o.dir != "" && o.vaultPath != "":
		problems = append(problems, "-secrets and -vault exclude each other: give one")
	case o.vaultPath != "":
		o.vaultPath = strings.Trim(strings.TrimPrefix(o.vaultPath, "vault://"), "/")
		if keySet {
			problems = append(problems, "-key goes with -secrets; with -vault the path names the secret")
		}
		if !validVaultPath(o.vaultPath) {
			problems = append(problems, "-vault takes a KV v2 path, mount first, e.g. secret/mcp/db, optionally with ?field=NAME to rotate one field holding the credentials' JSON")
		}
	}
	if !filepath.IsLocal(o.key) {
		problems = append(problems, "-key must name a file inside -secrets")
	}
	if o.dbURL == "" {
		problems = append(problems, "-db is required")
	}
	if o.ttl <= 0 {
		problems = append(problems, "-ttl is required: the servers' refresh interval, which the overlap must cover three times")
	}
	if roles != "" {
		o.roles = strings.Split(roles, ",")
		if len(o.roles) != 2 || o.roles[0] == "" || o.roles[1] == "" || o.roles[0] == o.roles[1] {
			problems = append(problems, "-roles takes two distinct role names, comma-separated")
		}
	}
	if o.every < 0 || o.jitter < 0 || (o.every == 0 && o.jitter > 0) || (o.every > 0 && o.jitter >= o.every) {
		problems = append(problems, "-jitter needs -every and must be shorter than it")
	}
	for _, f := range []struct {
		name string
		urls []string
	}{{"-consumer", o.consumers}, {"-consumer-dns", o.consumerDNS}} {
		for _, u := range f.urls {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				problems = append(problems, fmt.Sprintf("%s takes an absolute http or https URL, not %s", f.name, shownURL(u)))
			}
		}
	}
	if consumerOptSet && len(o.consumers) == 0 && len(o.consumerDNS) == 0 {
		problems = append(problems, "-consumer-key and -consumer-version go with -consumer or -consumer-dns, which name the servers to ask")
	}
	if _, err := consumerVersion(o.consumerVer); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		err := errors.New(strings.Join(problems, "; "))
		fmt.Fprintf(stderr, "rotator: %v (run rotator -h for help)\n", err)
		return o, err
	}
	return o, nil
}

// run is the command: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	admin := getenv(AdminDSNEnv)
	if len(o.roles) > 0 && admin == "" {
		fmt.Fprintf(stderr, "rotator: -roles needs $%s, a role that may ALTER ROLE both\n", AdminDSNEnv)
		return exitUsage
	}
	src, key, name, err := openStore(o)
	if err != nil {
		fmt.Fprintf(stderr, "rotator: %v\n", err)
		return exitUsage
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close() // the vault source's token renewal
	}
	target := &rotate.Postgres{DSN: o.dbURL, Admin: admin, Roles: o.roles, Policy: rotate.PasswordPolicy{Length: o.passwordSize}}
	opts := []rotate.Option{
		rotate.WithLogger(log), rotate.WithLease(o.lease), rotate.WithPollInterval(o.poll),
		rotate.WithNotify(sighupOnPromote(o.pidFile, log)),
	}
	if o.overlap > 0 {
		opts = append(opts, rotate.WithOverlap(o.overlap))
	}
	if o.deadline > 0 {
		opts = append(opts, rotate.WithOverlapDeadline(o.deadline))
	}
	if o.owner != "" {
		opts = append(opts, rotate.WithOwner(o.owner))
	}
	if c, err := consumers(o, key, name); err != nil {
		fmt.Fprintf(stderr, "rotator: %v\n", err)
		return exitUsage
	} else if c != nil {
		opts = append(opts, rotate.WithConsumers(*c))
	}
	if url := getenv(WebhookEnv); url != "" {
		opts = append(opts, rotate.WithNotify(rotate.Webhook(url, nil, 10*time.Second, log)))
	}
	if stopAt := getenv(StopAtEnv); stopAt != "" {
		opts = append(opts, rotate.WithStepHook(stopHook(ctx, stopAt, stdout)))
	}
	agent, err := rotate.New(src, target, o.ttl, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "rotator: %v\n", err)
		return exitUsage
	}

	if o.every > 0 {
		err := agent.Run(ctx, key, o.every, o.jitter)
		if errors.Is(err, context.Canceled) {
			return exitOK // stopped by a signal; an unfinished rotation resumes on the next start
		}
		fmt.Fprintf(stderr, "rotator: %v\n", err)
		return exitFailed
	}
	rep, err := agent.Rotate(ctx, key)
	if err != nil {
		fmt.Fprintf(stderr, "rotator: %v\n", err)
		switch {
		case errors.Is(err, rotate.ErrRolledBack):
			return exitRolledBack
		case errors.Is(err, rotate.ErrInProgress):
			return exitInProgress
		case errors.Is(err, rotate.ErrUnfinished):
			fmt.Fprintln(stderr, "rotator: the rotation is recorded as unfinished; run the rotator again to finish or undo it")
		}
		return exitFailed
	}
	resumed := ""
	if rep.Resumed {
		resumed = " (resumed)"
	}
	fmt.Fprintf(stdout, "rotated %s: version %s replaced %s%s\n", name, rep.To, rep.From, resumed)
	return exitOK
}

// openStore opens the store that -secrets or -vault names, and returns it
// with the key of the credentials in it and a name for messages. A Vault
// client is built from the environment (VAULT_ADDR, VAULT_TOKEN, ...), as
// the vault command builds its own.
func openStore(o options) (src secrets.Source, key, name string, err error) {
	if o.vaultPath != "" {
		v, err := vault.NewFromEnv()
		if err != nil {
			return nil, "", "", err
		}
		return v, o.vaultPath, "vault " + o.vaultPath, nil
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, "", "", fmt.Errorf("-secrets: %w", err)
	}
	f, err := file.New(file.WithDir(dir))
	if err != nil {
		return nil, "", "", err
	}
	return f, o.key, filepath.Join(dir, o.key), nil
}

// shownURL returns rawURL for a message without what may hold a
// credential: user information, query and fragment. A URL that does not
// parse is not shown at all.
func shownURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "a URL that does not parse"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	if u.Opaque != "" {
		return fmt.Sprintf("%q", u.Scheme+":...")
	}
	return fmt.Sprintf("%q", u.String())
}

// validVaultPath says whether p is a KV v2 path, mount first, optionally
// followed by ?field=NAME (a field holding the credentials' JSON; see
// sources/vault).
func validVaultPath(p string) bool {
	p, query, hasQuery := strings.Cut(p, "?")
	if !strings.Contains(p, "/") || strings.Contains(p, "#") {
		return false
	}
	if !hasQuery {
		return true
	}
	q, err := url.ParseQuery(query)
	return err == nil && len(q) == 1 && len(q["field"]) == 1 && q.Get("field") != "" && !strings.Contains(query, "#")
}

// consumerVersion parses -consumer-version into a rotate.Consumers Version
// function (nil: the id the rotator's source gives).
func consumerVersion(mode string) (func(secrets.Secret) (string, error), error) {
	switch field, isField := strings.CutPrefix(mode, "content:"); {
	case mode == "id":
		return nil, nil
	case mode == "content":
		return rotate.ContentVersionOf(""), nil
	case isField && field != "":
		return rotate.ContentVersionOf(field), nil
	}
	return nil, fmt.Errorf("-consumer-version %q: want id, content or content:FIELD", mode)
}

// consumers returns the consumer check of -consumer and -consumer-dns, or
// nil without them. file is the credentials file's path (-secrets).
func consumers(o options, key, file string) (*rotate.Consumers, error) {
	if len(o.consumers) == 0 && len(o.consumerDNS) == 0 {
		return nil, nil
	}
	var lists []func(context.Context) ([]string, error)
	if len(o.consumers) > 0 {
		lists = append(lists, rotate.StaticEndpoints(o.consumers...))
	}
	for _, u := range o.consumerDNS {
		l, err := rotate.ResolvedEndpoints(u, nil)
		if err != nil {
			return nil, fmt.Errorf("-consumer-dns: %w", err)
		}
		lists = append(lists, l)
	}
	ckey := o.consumerKey
	if ckey == "" {
		ckey = "file://" + file
		if o.vaultPath != "" {
			ckey = "vault://" + key
		}
	}
	version, err := consumerVersion(o.consumerVer)
	if err != nil {
		return nil, err
	}
	return &rotate.Consumers{
		Endpoints: func(ctx context.Context) ([]string, error) {
			var all []string
			for _, l := range lists {
				urls, err := l(ctx)
				if err != nil {
					return nil, err
				}
				all = append(all, urls...)
			}
			return all, nil
		},
		Key:     func(string) string { return ckey },
		Version: version,
	}, nil
}

// sighupOnPromote returns a notify function that sends SIGHUP to the
// process whose PID pidFile holds when a new version is promoted, and when
// a rotation is resumed past its promotion (the rotator that promoted it may
// have died before it could signal). With no pidFile it does nothing.
func sighupOnPromote(pidFile string, log *slog.Logger) func(context.Context, rotate.Event) {
	return func(ctx context.Context, e rotate.Event) {
		if pidFile == "" {
			return
		}
		switch {
		case e.Kind == rotate.EventPromoted:
		case e.Kind == rotate.EventResumed && (e.Rotation.Step == secrets.StepPromoted || e.Rotation.Step == secrets.StepOverlapped):
		default:
			return
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			log.WarnContext(ctx, "cannot read the PID file; the server picks the new password up on its own", "pidfile", pidFile, "error", err)
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			log.WarnContext(ctx, "the PID file does not hold a PID", "pidfile", pidFile)
			return
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			log.WarnContext(ctx, "SIGHUP failed; the server picks the new password up on its own", "pid", pid, "error", err)
			return
		}
		log.InfoContext(ctx, "sent SIGHUP", "pid", pid, "key", e.Key, "version", e.Rotation.Pending)
	}
}

// stopHook returns a step hook that stops the rotator at the step spec
// names ("STEP" once recorded, "STEP,unrecorded" before), as a crash would:
// it prints "stopped at STEP" and blocks until ctx ends (a SIGKILL ends the
// process first).
func stopHook(ctx context.Context, spec string, stdout io.Writer) func(string, secrets.RotationStep, bool) error {
	step, mode, _ := strings.Cut(spec, ",")
	wantRecorded := mode != "unrecorded"
	return func(_ string, s secrets.RotationStep, recorded bool) error {
		if string(s) != step || recorded != wantRecorded {
			return nil
		}
		fmt.Fprintf(stdout, "stopped at %s\n", spec)
		<-ctx.Done()
		return errors.New("stopped by " + StopAtEnv)
	}
}
