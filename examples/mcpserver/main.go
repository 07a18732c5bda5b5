// Command mcpserver is an MCP server whose credentials rotate without a
// restart: the bearer tokens its clients present are verified with a JWT key
// that rotates (the previous key is honoured for a grace window), its database
// password and its upstream API key come from a rotor Store, and SIGHUP
// reloads every credential after testing the new database password.
//
// With no flags it runs on the embedded default: demo credentials written to a
// temporary directory and served by the file source, a demo upstream API on
// loopback for the API tool, and, where PostgreSQL's server binaries are
// installed (/usr/lib/postgresql/*/bin, or initdb on PATH), a throwaway
// PostgreSQL cluster for the database tool, started as the tests start one
// (internal/pgtest) and removed on exit, SIGINT and SIGTERM included; on
// Linux a server that dies abruptly (SIGKILL, SIGQUIT) takes the cluster
// down with it too (a parent-death signal), leaving its temporary directory
// behind, and elsewhere such a cluster keeps running until stopped. It
// prints how to rotate each credential live: edit the files it names, and for
// the database password first ALTER ROLE.
//
//	go run ./examples/mcpserver                      # streamable HTTP on http://127.0.0.1:8080/mcp
//	go run ./examples/mcpserver -stdio               # MCP over stdin/stdout
//	go run ./examples/mcpserver -secrets /run/secrets -db postgres://db:5432/app
//
// Over HTTP the server is an OAuth 2.0 protected resource, as the MCP
// authorization specification asks (see jwtkeys/mcpauth.Resource): a request
// without a valid bearer token gets 401 with WWW-Authenticate: Bearer
// resource_metadata="...", the metadata is served at
// /.well-known/oauth-protected-resource/mcp (and at the root), and a token
// that carries scopes needs db:read for db_whoami and api:call for call_api
// (403 insufficient_scope otherwise). The metadata names the authorization
// servers of -authorization-server, by default a placeholder
// (https://authorization-server.invalid), as the specification requires one
// and the demo signs its own tokens. A token must name the endpoint's URL
// (-url, default http://ADDR/mcp) in its aud claim: one issued for another
// service is refused with 401 (RFC 8707, as the MCP specification asks). On
// the embedded demo credentials it prints such a token with both scopes; on credentials of your own (-secrets) it
// prints one only when asked (-print-token).
//
// With -read-once the database credential is read once at start-up and never
// again, as a server that calls os.Getenv in main does: the rotation drill
// (examples/drill) runs it as the baseline rotor is compared with.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/env"
	"github.com/rotorhq/rotor/sources/file"
	"github.com/rotorhq/rotor/sources/memory"
)

//go:embed defaults
var defaults embed.FS

type options struct {
	secretsDir  string
	httpAddr    string
	url         string
	authServers string
	stdio       bool
	dbURL       string
	demoDB      bool
	apiURL      string
	ttl         time.Duration
	printToken  tristate
	readOnce    bool
	metricsAddr string
	statusAddr  string
}

// A tristate is a boolean flag that remembers whether it was set.
type tristate struct{ set, on bool }

func (t *tristate) String() string   { return strconv.FormatBool(t.on) }
func (t *tristate) IsBoolFlag() bool { return true }
func (t *tristate) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	t.set, t.on = true, v
	return nil
}

// or returns the flag's value, or def when it was not set.
func (t tristate) or(def bool) bool {
	if t.set {
		return t.on
	}
	return def
}

func main() {
	var o options
	flag.StringVar(&o.secretsDir, "secrets", "", "directory of credential files: jwt_signing_key, api_key, db.json (default: the embedded demo credentials, copied to a temporary directory)")
	flag.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "address to serve streamable HTTP on; MCP is at /mcp")
	flag.Func("url", "the MCP endpoint's URL as clients reach it, the resource of the OAuth metadata and the aud of its tokens (default: http://ADDR/mcp)", func(s string) error {
		if err := checkURL(s); err != nil {
			return err
		}
		o.url = s
		return nil
	})
	flag.StringVar(&o.authServers, "authorization-server", "", "comma-separated OAuth authorization servers (issuers) listed in the resource metadata (default: "+demoAuthServer+", a placeholder: the demo signs its own tokens)")
	flag.BoolVar(&o.stdio, "stdio", false, "serve MCP over stdin and stdout instead of HTTP (no bearer tokens)")
	flag.StringVar(&o.dbURL, "db", os.Getenv("DATABASE_URL"), "PostgreSQL URL without credentials, e.g. postgres://localhost:5432/app; the credentials come from db.json")
	flag.BoolVar(&o.demoDB, "demo-db", true, "on the embedded demo credentials without -db, start a throwaway PostgreSQL cluster for db_whoami where PostgreSQL is installed")
	flag.StringVar(&o.apiURL, "api", "", "upstream API the call_api tool calls with api_key as bearer token (default: a demo API on loopback)")
	flag.DurationVar(&o.ttl, "ttl", time.Minute, "how often credentials are polled, besides file watches and SIGHUP")
	flag.Var(&o.printToken, "print-token", "print a bearer token signed with the current key, for trying the server (default: on the embedded demo credentials only)")
	flag.BoolVar(&o.readOnce, "read-once", false, "read the database credential once at start-up and never again (a baseline for the rotation drill; not for production)")
	flag.StringVar(&o.metricsAddr, "metrics", "", "address to serve Prometheus metrics on, at /metrics (e.g. 127.0.0.1:9464; default: none)")
	flag.StringVar(&o.statusAddr, "status", "", "address to serve the credentials' status on, at /status: version ids, never values; 503 while one cannot be served (a readiness probe; the rotator's -consumer) (e.g. 0.0.0.0:9090; default: none)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	out := io.Writer(os.Stdout)
	if o.stdio {
		out = os.Stderr // stdout carries the protocol
	}
	if err := run(ctx, o, log, out, nil); err != nil {
		log.Error("mcpserver", "error", err)
		os.Exit(1)
	}
}

// demoAuthServer is the authorization server the metadata names when
// -authorization-server is not given. The MCP specification requires at
// least one; the demo has none, as it signs its own tokens, so it names a
// placeholder in the .invalid domain (RFC 6761), which never resolves: a
// client that tries an OAuth flow there fails at once, and one that
// presents a token (the printed one) never goes there.
const demoAuthServer = "https://authorization-server.invalid"

// printTokenByDefault says whether a token is printed when -print-token is
// not given: on the embedded demo credentials only. A token signed with
// credentials of one's own (-secrets) is a real one, and has no place in a
// log.
func printTokenByDefault(demo bool) bool { return demo }

// run serves until ctx ends. ready, when set, receives the MCP endpoint's URL
// once the server listens.
func run(ctx context.Context, o options, log *slog.Logger, out io.Writer, ready chan<- string) error {
	if o.url != "" {
		if err := checkURL(o.url); err != nil {
			return fmt.Errorf("-url: %w", err)
		}
	}
	demo := o.secretsDir == ""
	if demo {
		dir, err := os.MkdirTemp("", "rotor-mcpserver-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := copyDefaults(dir); err != nil {
			return err
		}
		o.secretsDir = dir
	}
	dir, err := filepath.Abs(o.secretsDir)
	if err != nil {
		return err
	}
	jwtKey := "file://" + filepath.Join(dir, "jwt_signing_key")
	apiKey := "file://" + filepath.Join(dir, "api_key")
	dbKey := "file://" + filepath.Join(dir, "db.json")

	var rotateDB []string // how to rotate the demo cluster's password
	if demo && o.dbURL == "" && o.demoDB {
		db, err := startDemoDB(ctx, dir)
		switch {
		case err != nil && db == nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			fmt.Fprintf(out, "db_whoami is disabled: %v\n", err)
		default:
			defer func() {
				if err := db.stop(); err != nil {
					log.Warn("stopping the demo PostgreSQL cluster", "error", err)
				}
			}()
			o.dbURL = db.url
			rotateDB = db.howToRotate(dir, o.ttl)
		}
	}

	// An editor, echo and most secret files end the text with a newline,
	// which no password, key or header value carries.
	files, err := file.New(file.WithDir(dir), file.WithTrimNewline())
	if err != nil {
		return err
	}
	opts := []secrets.Option{
		secrets.WithSource("file", files),
		secrets.WithSource("env", env.New()),
		secrets.WithTTL(o.ttl),
		secrets.WithLogger(log),
		secrets.WithValidator(jwtkeys.KeyValidator(), jwtKey),
	}
	switch {
	case o.dbURL != "" && o.readOnce:
		// What os.Getenv in main amounts to: one read, then a source
		// that never changes.
		raw, err := os.ReadFile(filepath.Join(dir, "db.json"))
		if err != nil {
			return err
		}
		once := memory.New()
		once.Set("db.json", string(raw))
		opts = append(opts, secrets.WithSource("once", once))
		dbKey = "once://db.json"
	case o.dbURL != "":
		opts = append(opts, secrets.WithValidator(server.DBValidator(o.dbURL), dbKey))
	}
	met, err := startMetrics(o.metricsAddr, out)
	if err != nil {
		return err
	}
	defer met.stop()
	store, err := secrets.New(nil, append(opts, met.options()...)...)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := met.observeStore(store); err != nil {
		return err
	}
	stopHUP := secrets.ReloadOnSignal(ctx, store, syscall.SIGHUP)
	defer stopHUP()

	if o.apiURL == "" {
		url, stopAPI, err := demoAPI(store, apiKey)
		if err != nil {
			return err
		}
		defer stopAPI()
		o.apiURL = url
	}
	cfg := server.Config{Store: store, APIURL: o.apiURL, APIKeyKey: apiKey, Logger: log}
	if o.dbURL != "" {
		if _, err := store.Get(ctx, dbKey); err != nil {
			return fmt.Errorf("-db is set but the credential %s cannot be read: %w", dbKey, err)
		}
		cfg.DatabaseURL, cfg.DBCredKey = o.dbURL, dbKey
		read := "read once at start-up"
		if !o.readOnce {
			read = "kept current"
		}
		where := o.dbURL
		if rotateDB != nil {
			where = "a throwaway cluster at " + o.dbURL + " (removed on exit)"
		}
		fmt.Fprintf(out, "db_whoami: PostgreSQL, %s, credentials from %s (%s)\n", where, filepath.Join(dir, "db.json"), read)
		for _, l := range rotateDB {
			fmt.Fprintln(out, "  "+l)
		}
	} else if !demo || !o.demoDB {
		fmt.Fprintf(out, "db_whoami is disabled: pass -db postgres://HOST:PORT/DB and put {\"username\": ..., \"password\": ...} in %s\n", filepath.Join(dir, "db.json"))
	}
	fmt.Fprintf(out, "call_api: %s, bearer token from %s\n", o.apiURL, filepath.Join(dir, "api_key"))
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	stopStatus, err := startStatus(o.statusAddr, store, out)
	if err != nil {
		return err
	}
	defer stopStatus()

	if o.stdio {
		fmt.Fprintf(out, "serving MCP on stdin/stdout (pid %d): edit the files in %s, or send SIGHUP, to rotate\n", os.Getpid(), dir)
		return srv.MCP.Run(ctx, &mcp.StdioTransport{})
	}

	l, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	defer l.Close()
	endpoint := o.url
	if endpoint == "" {
		endpoint = "http://" + l.Addr().String() + "/mcp"
	}
	// The MCP authorization specification (RFC 8707): a token must have
	// been issued for this server, its aud naming the resource URL; one
	// the same issuer signed for another service is refused.
	verifier, err := jwtkeys.NewVerifier(store, jwtKey, jwtkeys.WithAudience(endpoint))
	if err != nil {
		return err
	}
	if err := met.observeVerifier(verifier); err != nil {
		return err
	}
	signer, err := jwtkeys.NewSigner(store, jwtKey)
	if err != nil {
		return err
	}
	var authServers []string
	for _, a := range strings.Split(o.authServers, ",") {
		if a = strings.TrimSpace(a); a != "" {
			authServers = append(authServers, a)
		}
	}
	if len(authServers) == 0 {
		// The MCP specification: the metadata MUST name at least one
		// authorization server (and the SDK's OAuth client refuses
		// metadata that names none).
		authServers = []string{demoAuthServer}
	}
	h, err := srv.HTTPHandler(mcpauth.TokenVerifier(verifier), endpoint, authServers...)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "serving MCP (streamable HTTP) on %s; bearer tokens verified with %s\n", endpoint, filepath.Join(dir, "jwt_signing_key"))
	token := "$TOKEN"
	if o.printToken.or(printTokenByDefault(demo)) {
		tok, err := signer.Sign(ctx, jwt.MapClaims{
			"sub":   "demo-user",
			"aud":   endpoint,
			"scope": server.AllScopes,
			"exp":   time.Now().Add(time.Hour).Unix(),
			"iat":   time.Now().Unix(),
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "a token valid for an hour, scopes %s (demo key: keep such output out of real logs):\n  %s\n", server.AllScopes, tok)
		token = tok
	}
	fmt.Fprintf(out, "connect (Node >= 22.19): npx @modelcontextprotocol/inspector --cli %s --header \"Authorization: Bearer %s\" --method tools/call --tool-name call_api\n", endpoint, token)
	fmt.Fprintln(out, "or over stdio (-stdio, no token): go build -o /tmp/rotor-mcpserver ./examples/mcpserver && npx @modelcontextprotocol/inspector --cli --connect-timeout 60000 /tmp/rotor-mcpserver -stdio --method tools/list (README: the mcpServers JSON)")
	fmt.Fprintf(out, "pid %d: edit the files in %s, or send SIGHUP, to rotate\n", os.Getpid(), dir)
	if ready != nil {
		ready <- endpoint
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// checkURL says whether s can be the MCP endpoint's URL (-url): an
// absolute http(s) URL written as clients send it, in the ASCII characters
// of RFC 3986 (a space as %20), that mcpauth.Resource can serve.
func checkURL(s string) error {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			return fmt.Errorf("%q holds %q, which a URL carries percent-encoded (a space as %%20)", s, c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	_, err = (&mcpauth.Resource{URL: s}).MetadataURL()
	return err
}

// copyDefaults writes the embedded demo credentials to dir.
func copyDefaults(dir string) error {
	return fs.WalkDir(defaults, "defaults", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := defaults.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), b, 0o600)
	})
}

// demoAPI stands in for an upstream service: it accepts the current API key,
// and the previous one, as a service in the middle of a rotation does.
func demoAPI(store *secrets.Store, key string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := store.Versions(r.Context(), key)
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		got := secrets.NewSecretString("", "", r.Header.Get("Authorization"))
		for _, k := range []secrets.Secret{v.Current, v.Previous} {
			if !k.IsZero() && got.Equal(secrets.NewSecretString("", "", "Bearer "+k.Reveal())) {
				fmt.Fprintf(w, "hello from the demo API (key version %s)", k.Version())
				return
			}
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(l)
	}()
	return "http://" + l.Addr().String() + "/hello", func() {
		hs.Close()
		<-done
	}, nil
}
