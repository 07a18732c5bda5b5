// Command mcpgo is an MCP server written on github.com/mark3labs/mcp-go whose
// tool handlers and bearer auth run on rotor: the bearer tokens of its
// clients are verified with a JWT key from a rotor Store (the previous key
// honoured for a grace window, see jwtkeys), every tool handler runs inside
// secrets.Call (one consistent View of the Store per call, and one retry
// with refreshed credentials after an authentication failure), and its API
// tool calls an upstream with a rotating key through secrets.NewTransport.
//
// The HTTP side is plain net/http, so the OAuth protected-resource handling
// of jwtkeys/mcpauth (401 with resource_metadata, RFC 9728 metadata,
// per-tool scopes answered with 403) fits around mcp-go's streamable HTTP
// handler as it fits around the official SDK's.
//
//	go run ./examples/mcpgo                 # demo credentials, http://127.0.0.1:8081/mcp
//	go run ./examples/mcpgo -secrets DIR    # jwt_signing_key and api_key files in DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
	"github.com/rotorhq/rotor/sources/memory"
)

// Config says where the server's credentials are. Keys name secrets in
// Store, never values.
type Config struct {
	Store     *secrets.Store
	JWTKey    string // the signing key of bearer tokens
	APIKey    string // the upstream API's key
	APIURL    string // the upstream API call_api calls
	Endpoint  string // the MCP endpoint's URL as clients reach it, http://host:port/mcp
	ToolScope map[string][]string
	// AuthorizationServers are the issuers the resource metadata names;
	// the MCP authorization specification requires at least one. Empty
	// means a placeholder that never resolves
	// (https://authorization-server.invalid): the example signs its own
	// tokens, and a client that tries an OAuth flow there fails at once.
	AuthorizationServers []string
}

// NewHandler returns the MCP server on mcp-go, served over streamable HTTP at
// cfg.Endpoint's path behind bearer tokens verified with the rotating key
// and issued for cfg.Endpoint (their aud claim names it).
// The returned function releases the upstream client's idle connections.
func NewHandler(cfg Config) (http.Handler, func(), error) {
	// The MCP authorization specification (RFC 8707): a token must have
	// been issued for this server, its aud naming the endpoint's URL; one
	// the same issuer signed for another service is refused with 401.
	if cfg.Endpoint == "" {
		return nil, nil, errors.New("mcpgo: Config.Endpoint is empty")
	}
	verifier, err := jwtkeys.NewVerifier(cfg.Store, cfg.JWTKey, jwtkeys.WithAudience(cfg.Endpoint))
	if err != nil {
		return nil, nil, err
	}
	api := &http.Client{Transport: secrets.NewTransport(cfg.Store, cfg.APIKey), Timeout: 10 * time.Second}

	s := server.NewMCPServer("rotor-mcpgo-example", "v0.1.0",
		server.WithToolCapabilities(false),
		server.WithToolHandlerMiddleware(onRotor(cfg.Store)))
	s.AddTool(mcp.NewTool("call_api",
		mcp.WithDescription("Call the configured HTTP API with the rotating API key.")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.APIURL, nil)
			if err != nil {
				return nil, err
			}
			resp, err := api.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if err := secrets.CheckResponse(resp); err != nil {
				return nil, err // a 401 is an authentication failure: onRotor retries
			}
			return mcp.NewToolResultText(string(body)), nil
		})

	authServers := cfg.AuthorizationServers
	if len(authServers) == 0 {
		authServers = []string{"https://authorization-server.invalid"}
	}
	res := &mcpauth.Resource{URL: cfg.Endpoint, ToolScopes: cfg.ToolScope, AllowUnscoped: true,
		AuthorizationServers: authServers, Name: "rotor mcp-go example"}
	h, err := res.Handler(mcpauth.TokenVerifier(verifier), nil, server.NewStreamableHTTPServer(s))
	if err != nil {
		return nil, nil, err
	}
	return h, api.CloseIdleConnections, nil
}

// onRotor runs every tool handler inside secrets.Call: the handler's
// credentials come from one View of the Store, and after an authentication
// failure (a 401, a PostgreSQL 28P01) the keys it read are refreshed and
// the handler runs once more. The handler must return such failures as
// errors, not as tool results, for the retry to see them.
func onRotor(store *secrets.Store) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var res *mcp.CallToolResult
			err := secrets.Call(ctx, store, func(ctx context.Context) error {
				var err error
				res, err = next(ctx, req)
				return err
			})
			return res, err
		}
	}
}

func main() {
	dir := flag.String("secrets", "", "directory with the files jwt_signing_key and api_key (default: demo credentials in memory)")
	addr := flag.String("http", "127.0.0.1:8081", "address to serve streamable HTTP on; MCP is at /mcp")
	apiURL := flag.String("api", "", "upstream API call_api calls with api_key as bearer token (default: a demo API on loopback)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *addr, *apiURL, os.Stdout); err != nil {
		slog.Error("mcpgo", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, addr, apiURL string, out io.Writer) error {
	var opts []secrets.Option
	jwtKey, apiKey := "jwt_signing_key", "api_key"
	demo := dir == ""
	if demo {
		// Demo credentials: they protect nothing.
		mem := memory.New()
		mem.Set(jwtKey, "demo-signing-key-for-the-mcp-go-example-0123456789")
		mem.Set(apiKey, "demo-api-key-1")
		opts = append(opts, secrets.WithSource("mem", mem))
		jwtKey, apiKey = "mem://"+jwtKey, "mem://"+apiKey
	} else {
		files, err := file.New(file.WithDir(dir))
		if err != nil {
			return err
		}
		opts = append(opts, secrets.WithSource("file", files))
		jwtKey, apiKey = "file://"+filepath.Join(dir, jwtKey), "file://"+filepath.Join(dir, apiKey)
	}
	opts = append(opts, secrets.WithValidator(jwtkeys.KeyValidator(), jwtKey))
	store, err := secrets.New(nil, opts...)
	if err != nil {
		return err
	}
	defer store.Close()
	defer secrets.ReloadOnSignal(ctx, store, syscall.SIGHUP)()

	if apiURL == "" {
		api := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, err := store.Versions(r.Context(), apiKey)
			if err != nil || r.Header.Get("Authorization") != "Bearer "+v.Current.Reveal() {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, "hello from the demo API (key version %s)", v.Current.Version())
		})}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go api.Serve(l)
		defer api.Close()
		apiURL = "http://" + l.Addr().String() + "/hello"
	}

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	endpoint := "http://" + l.Addr().String() + "/mcp"
	h, closeIdle, err := NewHandler(Config{Store: store, JWTKey: jwtKey, APIKey: apiKey, APIURL: apiURL, Endpoint: endpoint,
		ToolScope: map[string][]string{"call_api": {"api:call"}}})
	if err != nil {
		l.Close()
		return err
	}
	defer closeIdle()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "serving MCP (mcp-go, streamable HTTP) on %s\n", endpoint)
	if demo {
		signer, err := jwtkeys.NewSigner(store, jwtKey)
		if err != nil {
			return err
		}
		tok, err := signer.Sign(ctx, jwt.MapClaims{"sub": "demo-user", "aud": endpoint, "scope": "api:call", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "a token valid for an hour (demo key: keep such output out of real logs):\n  %s\n", tok)
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
