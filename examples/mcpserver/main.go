// Command mcpserver is an MCP server whose credentials rotate without a
// restart: the bearer tokens its clients present are verified with a JWT key
// that rotates (the previous key is honoured for a grace window), its database
// password and its upstream API key come from a rotor Store, and SIGHUP
// reloads every credential after testing the new database password.
//
// With no flags it runs on the embedded default: demo credentials written to a
// temporary directory and served by the file source, the database tool
// disabled unless -db names a PostgreSQL server, and a demo upstream API on
// loopback for the API tool. Edit the files it names to rotate a credential.
//
//	go run ./examples/mcpserver                      # streamable HTTP on 127.0.0.1:8080
//	go run ./examples/mcpserver -stdio               # MCP over stdin/stdout
//	go run ./examples/mcpserver -secrets /run/secrets -db postgres://db:5432/app
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
	"os"
	"os/signal"
	"path/filepath"
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
	secretsDir string
	httpAddr   string
	stdio      bool
	dbURL      string
	apiURL     string
	ttl        time.Duration
	printToken bool
	readOnce   bool
}

func main() {
	var o options
	flag.StringVar(&o.secretsDir, "secrets", "", "directory of credential files: jwt_signing_key, api_key, db.json (default: the embedded demo credentials, copied to a temporary directory)")
	flag.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "address to serve streamable HTTP on")
	flag.BoolVar(&o.stdio, "stdio", false, "serve MCP over stdin and stdout instead of HTTP (no bearer tokens)")
	flag.StringVar(&o.dbURL, "db", os.Getenv("DATABASE_URL"), "PostgreSQL URL without credentials, e.g. postgres://localhost:5432/app; the credentials come from db.json")
	flag.StringVar(&o.apiURL, "api", "", "upstream API the call_api tool calls with api_key as bearer token (default: a demo API on loopback)")
	flag.DurationVar(&o.ttl, "ttl", time.Minute, "how often credentials are polled, besides file watches and SIGHUP")
	flag.BoolVar(&o.printToken, "print-token", true, "print a bearer token signed with the current key, for trying the server")
	flag.BoolVar(&o.readOnce, "read-once", false, "read the database credential once at start-up and never again (a baseline for the rotation drill; not for production)")
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

// run serves until ctx ends. ready, when set, receives the HTTP address once
// the server listens.
func run(ctx context.Context, o options, log *slog.Logger, out io.Writer, ready chan<- string) error {
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

	files, err := file.New(file.WithDir(dir))
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
	store, err := secrets.New(nil, opts...)
	if err != nil {
		return err
	}
	defer store.Close()
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
		fmt.Fprintf(out, "db_whoami: PostgreSQL at %s, credentials from %s (%s)\n", o.dbURL, filepath.Join(dir, "db.json"), read)
	} else {
		fmt.Fprintf(out, "db_whoami is disabled: pass -db postgres://HOST:PORT/DB and put {\"username\": ..., \"password\": ...} in %s\n", filepath.Join(dir, "db.json"))
	}
	fmt.Fprintf(out, "call_api: %s, bearer token from %s\n", o.apiURL, filepath.Join(dir, "api_key"))
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	if o.stdio {
		fmt.Fprintln(out, "serving MCP on stdin/stdout")
		return srv.MCP.Run(ctx, &mcp.StdioTransport{})
	}

	verifier, err := jwtkeys.NewVerifier(store, jwtKey)
	if err != nil {
		return err
	}
	signer, err := jwtkeys.NewSigner(store, jwtKey)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.HTTPHandler(mcpauth.TokenVerifier(verifier)), ReadHeaderTimeout: 10 * time.Second}
	addr := "http://" + l.Addr().String()
	fmt.Fprintf(out, "serving MCP (streamable HTTP) on %s; bearer tokens verified with %s\n", addr, filepath.Join(dir, "jwt_signing_key"))
	if o.printToken {
		tok, err := signer.Sign(ctx, jwt.RegisteredClaims{
			Subject:   "demo-user",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
			IssuedAt:  jwt.NewNumericDate(time.Now()),
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "a token valid for an hour (demo key: keep such output out of real logs):\n  %s\n", tok)
	}
	fmt.Fprintf(out, "pid %d: edit the files in %s, or send SIGHUP, to rotate\n", os.Getpid(), dir)
	if ready != nil {
		ready <- addr
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
