// Package server is the example MCP server's tools, wired to a secrets.Store:
// a tool that queries PostgreSQL with a rotating password, and one that calls
// an HTTP API with a rotating key. The command in the parent directory runs
// it; the rotation drill (examples/drill) runs it under load.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
	"github.com/rotorhq/rotor/secrets"
)

// ToolScopes are the OAuth scopes each tool needs of a token that carries
// scopes (a scope or scp claim); a token without any scope claim may call
// every tool. Over stdio no token is checked.
var ToolScopes = map[string][]string{
	"db_whoami": {"db:read"},
	"call_api":  {"api:call"},
}

// AllScopes are the scopes of every tool, space-separated, as a token's
// scope claim carries them.
const AllScopes = "db:read api:call"

// Config says what the server connects to. Credentials are keys in Store,
// never values.
type Config struct {
	Store *secrets.Store

	// DatabaseURL is PostgreSQL's address without credentials
	// (postgres://host:5432/db?sslmode=disable); "" disables the database
	// tool. DBCredKey names a JSON secret {"username": ..., "password": ...}.
	DatabaseURL string
	DBCredKey   string
	// MaxConnLifetime bounds how long a pooled connection lives, so that
	// connections opened with an old password drain (default 5 minutes).
	MaxConnLifetime time.Duration

	// APIURL is the HTTP API the api tool calls; "" disables it. APIKeyKey
	// names the secret sent as its bearer token.
	APIURL    string
	APIKeyKey string

	Logger *slog.Logger
}

// Server holds the MCP server and the connections its tools use.
type Server struct {
	MCP  *mcp.Server
	cfg  Config
	pool *pgxpool.Pool
	http *http.Client
}

// DBResult is the database tool's output. PID and SessionStart name the
// database session that ran the query: a session that started after a
// password change logged in with the new password.
type DBResult struct {
	User         string    `json:"user" jsonschema:"the database role the query ran as"`
	Now          time.Time `json:"now" jsonschema:"the database server's clock"`
	PID          int32     `json:"pid" jsonschema:"the process id of the database session that ran the query"`
	SessionStart time.Time `json:"session_start" jsonschema:"when that session logged in, by the database server's clock"`
}

// APIResult is the API tool's output.
type APIResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// New builds the server. It does not connect to the database until a tool
// runs.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg,
		MCP: mcp.NewServer(&mcp.Implementation{Name: "rotor-example", Version: "v0.1.0"}, nil),
	}
	// The server-side half of the scope check: it sees each call as the
	// SDK decoded it (the HTTP half answers 403; see HTTPHandler).
	s.MCP.AddReceivingMiddleware(resource("", nil).ToolScopeMiddleware())
	if cfg.DatabaseURL != "" {
		pool, err := NewPool(cfg.DatabaseURL, cfg.Store, cfg.DBCredKey, cfg.MaxConnLifetime)
		if err != nil {
			return nil, err
		}
		s.pool = pool
		mcp.AddTool(s.MCP, &mcp.Tool{
			Name:        "db_whoami",
			Description: "Ask PostgreSQL which role the server is connected as, its time, and which session ran the query.",
		}, secrets.WrapTool(cfg.Store, s.dbWhoami))
	}
	if cfg.APIURL != "" {
		s.http = &http.Client{
			Transport: secrets.NewTransport(cfg.Store, cfg.APIKeyKey),
			Timeout:   10 * time.Second,
		}
		mcp.AddTool(s.MCP, &mcp.Tool{
			Name:        "call_api",
			Description: "Call the configured HTTP API with the rotating API key.",
		}, secrets.WrapTool(cfg.Store, s.callAPI))
	}
	return s, nil
}

// NewPool returns a pgx pool whose new connections take their user and
// password from the JSON secret at credKey, read at connect time: after a
// rotation new connections use the new credentials while the open ones drain
// (MaxConnLifetime). Both fields come from one version of the secret.
func NewPool(databaseURL string, store *secrets.Store, credKey string, maxLifetime time.Duration) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("server: database URL: %w", err)
	}
	if maxLifetime <= 0 {
		maxLifetime = 5 * time.Minute
	}
	pc.MaxConnLifetime = maxLifetime
	pc.MaxConnLifetimeJitter = maxLifetime / 10
	pc.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		user, pw, err := DBCredentials(ctx, secrets.ViewFrom(ctx, store), credKey)
		if err != nil {
			return err
		}
		cc.User, cc.Password = user, pw
		return nil
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// DBCredentials reads user name and password from one version of the JSON
// secret at key.
func DBCredentials(ctx context.Context, v *secrets.View, key string) (user, password string, err error) {
	cred, err := v.Get(ctx, key)
	if err != nil {
		return "", "", err
	}
	u, err := cred.Field("username")
	if err != nil {
		return "", "", err
	}
	p, err := cred.Field("password")
	if err != nil {
		return "", "", err
	}
	return u.Reveal(), p.Reveal(), nil
}

// DBValidator tests a candidate database credential by logging in with it
// before the Store swaps it in. It reads databaseURL as NewPool does
// (pgxpool.ParseConfig), so that the pool's own parameters (pool_max_conns
// and the like) are taken out of the URL rather than sent to the server, and
// it connects with the same connection settings as the pool's connections.
// It may run concurrently with itself; each call opens one connection and
// closes it.
func DBValidator(databaseURL string) secrets.Validator {
	return func(ctx context.Context, key string, cand secrets.Versions) error {
		pc, err := pgxpool.ParseConfig(databaseURL)
		if err != nil {
			return fmt.Errorf("server: database URL: %w", err)
		}
		cc := pc.ConnConfig
		u, err := cand.Current.Field("username")
		if err != nil {
			return err
		}
		p, err := cand.Current.Field("password")
		if err != nil {
			return err
		}
		cc.User, cc.Password = u.Reveal(), p.Reveal()
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return fmt.Errorf("login with the candidate credential failed: %w", err)
		}
		return conn.Close(ctx)
	}
}

func (s *Server) dbWhoami(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, DBResult, error) {
	// Read the credential through the call's View, so that the wrapper
	// knows which key to refresh should the database refuse it.
	if _, _, err := DBCredentials(ctx, secrets.ViewFrom(ctx, s.cfg.Store), s.cfg.DBCredKey); err != nil {
		return nil, DBResult{}, err
	}
	var out DBResult
	query := func() error {
		return s.pool.QueryRow(ctx, `select current_user, now(), pg_backend_pid(),
		(select backend_start from pg_stat_activity where pid = pg_backend_pid())`).Scan(&out.User, &out.Now, &out.PID, &out.SessionStart)
	}
	err := query()
	if sessionEnded(err) {
		// The pool handed out a connection whose session PostgreSQL had
		// already ended while it sat idle. The query only reads, so it
		// runs again on a connection the pool opens or checks now.
		err = query()
	}
	if err != nil {
		return nil, DBResult{}, err
	}
	return nil, out, nil
}

// sessionEnded reports whether err says the query met a connection that was
// already gone: nothing was sent (pgconn.SafeToRetry), or PostgreSQL had
// ended the session (SQLSTATE 57P01 admin_shutdown, as
// pg_terminate_backend does; 57P02 crash_shutdown; 57P05
// idle_session_timeout). pgxpool pings a connection before handing it out
// only when it has been idle for over a second, so a session ended sooner
// than that, or while the caller was descheduled, still reaches a query.
func sessionEnded(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P05":
			return true
		}
	}
	return false
}

func (s *Server) callAPI(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, APIResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.APIURL, nil)
	if err != nil {
		return nil, APIResult{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, APIResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err := secrets.CheckResponse(resp); err != nil {
		return nil, APIResult{}, err
	}
	return nil, APIResult{Status: resp.StatusCode, Body: string(body)}, nil
}

func resource(url string, authServers []string) *mcpauth.Resource {
	return &mcpauth.Resource{
		URL:                  url,
		AuthorizationServers: authServers,
		ToolScopes:           ToolScopes,
		AllowUnscoped:        true,
		Name:                 "rotor example MCP server",
	}
}

// HTTPHandler serves the MCP server over streamable HTTP at the path of
// resourceURL, the endpoint's URL as clients reach it
// (http://127.0.0.1:8080/mcp), as an OAuth protected resource
// (mcpauth.Resource): every request must carry a bearer token that verify
// accepts, or gets 401 with WWW-Authenticate: Bearer resource_metadata=...;
// the metadata document is served at its RFC 9728 well-known URL
// (/.well-known/oauth-protected-resource/mcp, and at the root), listing
// authServers; a token that carries scopes but not the one a tool needs
// (ToolScopes) gets 403 insufficient_scope for that tool. With verify nil,
// the MCP endpoint is served on every path, unprotected.
func (s *Server) HTTPHandler(verify auth.TokenVerifier, resourceURL string, authServers ...string) (http.Handler, error) {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.MCP }, &mcp.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: true,
		Logger:       s.cfg.Logger,
	})
	if verify == nil {
		return h, nil
	}
	return resource(resourceURL, authServers).Handler(verify, nil, h)
}

// Close closes the database pool and idle HTTP connections.
func (s *Server) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
	if s.http != nil {
		s.http.CloseIdleConnections()
	}
}
