package mcpauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// WellKnownPath is where RFC 9728 places a protected resource's metadata:
// at the root for a resource without a path, and before the resource's path
// otherwise (/.well-known/oauth-protected-resource/mcp for /mcp).
const WellKnownPath = "/.well-known/oauth-protected-resource"

// A Resource describes an MCP server as an OAuth 2.0 protected resource, as
// the MCP authorization specification makes it: a request without a valid
// token gets a 401 whose WWW-Authenticate header names the resource's
// metadata document (RFC 9728), the document is served at its well-known
// URL, and a tools/call whose token lacks a scope the tool needs gets a 403
// with error="insufficient_scope" (RFC 6750 section 3.1), from which a
// client can ask its authorization server for more.
//
// A Resource is read, never written, by the handlers it returns: do not
// change it after calling Handler, MetadataHandler or RequireBearerToken.
type Resource struct {
	// URL is the MCP endpoint as clients connect to it, such as
	// "https://mcp.example.com/mcp": the resource identifier of the
	// metadata, which clients compare with the URL they called. Required;
	// it has no fragment.
	URL string

	// AuthorizationServers are the issuers (RFC 8414) whose tokens the
	// resource accepts. The MCP specification asks for at least one, as
	// clients that obtain tokens themselves start from it; a server whose
	// tokens are handed out otherwise (as the example server's are) may
	// leave it empty.
	AuthorizationServers []string

	// ToolScopes maps a tool's name to the scopes a token must carry, every
	// one of them, to call the tool. A tool not named here needs none.
	ToolScopes map[string][]string

	// AllowUnscoped lets a token that carries no scope claim at all
	// (neither scope nor scp) call every tool: scopes are checked where the
	// token carries them, as for tokens from an issuer that does not use
	// scopes. By default such a token holds no scope and is refused every
	// tool that needs one. A token with a scope claim, even an empty, null
	// or malformed one (see the package doc), is always checked. The distinction comes from TokenVerifier, which
	// leaves auth.TokenInfo.Scopes nil only when the token has no scope
	// claim; with another verifier, a nil Scopes counts as unscoped.
	AllowUnscoped bool

	// ScopesSupported is the metadata's scopes_supported (default: every
	// scope in ToolScopes, sorted).
	ScopesSupported []string

	// Name is the metadata's resource_name, a name for people; Documentation
	// its resource_documentation, a URL.
	Name          string
	Documentation string
}

// parse checks r.URL and returns it parsed.
func (r *Resource) parse() (*url.URL, error) {
	if r == nil || r.URL == "" {
		return nil, errors.New("mcpauth: Resource.URL is empty")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: Resource.URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("mcpauth: Resource.URL %q is not an absolute http(s) URL", r.URL)
	}
	if u.Fragment != "" || strings.HasSuffix(r.URL, "#") {
		return nil, fmt.Errorf("mcpauth: Resource.URL %q has a fragment", r.URL)
	}
	if u.Path == WellKnownPath || strings.HasPrefix(u.Path, WellKnownPath+"/") {
		return nil, fmt.Errorf("mcpauth: Resource.URL %q is under %s, where the metadata is served", r.URL, WellKnownPath)
	}
	return u, nil
}

// MetadataURL returns the URL of the resource's metadata document, formed as
// RFC 9728 section 3.1 says: the well-known path inserted between the host
// and the resource's path, where only a slash right after the host is
// removed (https://h/ has its metadata at /.well-known/oauth-protected-resource,
// https://h/mcp/ at /.well-known/oauth-protected-resource/mcp/, which is
// also where the official Go SDK's client looks). It is the URL the 401's
// WWW-Authenticate header names, so it is written in ASCII as a URI (RFC
// 3986): the path is escaped, and in the query every byte a URI cannot hold
// (a space, a quote, a backslash, a control or non-ASCII byte) is
// percent-encoded, so that the header carries it as a quoted-string without
// any escaping.
func (r *Resource) MetadataURL() (string, error) {
	u, err := r.parse()
	if err != nil {
		return "", err
	}
	m := *u
	m.Path = metadataPath(u)
	m.RawPath = ""
	return uriEscape(m.String()), nil
}

// uriEscape percent-encodes the bytes of s that a URI cannot hold as they
// are: controls, space, non-ASCII, and "<>\^`{|}. A '%' is left alone.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// metadataPath is the path of the metadata document of the resource u.
func metadataPath(u *url.URL) string {
	if u.Path == "/" {
		return WellKnownPath
	}
	return WellKnownPath + u.Path
}

// Metadata returns the resource's metadata document (RFC 9728 section 2).
// Bearer tokens are accepted in the Authorization header only.
func (r *Resource) Metadata() (*oauthex.ProtectedResourceMetadata, error) {
	if _, err := r.parse(); err != nil {
		return nil, err
	}
	return r.metadata(r.URL), nil
}

func (r *Resource) metadata(resource string) *oauthex.ProtectedResourceMetadata {
	scopes := r.ScopesSupported
	if scopes == nil {
		for _, list := range r.ToolScopes {
			for _, s := range list {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
		sort.Strings(scopes)
	}
	return &oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   slices.Clone(r.AuthorizationServers),
		ScopesSupported:        slices.Clone(scopes),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           r.Name,
		ResourceDocumentation:  r.Documentation,
	}
}

// MetadataHandler serves the metadata document, with the SDK's
// auth.ProtectedResourceMetadataHandler, at MetadataURL's path, and, for
// clients that look at the root as the MCP specification lets them, at
// WellKnownPath itself, there describing the origin (the resource URL
// without its path), as RFC 9728 section 3.3 asks of a document found at
// the root. Other paths get 404. Mount it at WellKnownPath and below, or
// use Handler.
//
// Paths are compared with the request's (decoded) URL.Path, as they are:
// Resource.URL never becomes an http.ServeMux pattern, so whatever path it
// holds (a space, a brace) is served, not refused by the mux.
func (r *Resource) MetadataHandler() (http.Handler, error) {
	u, err := r.parse()
	if err != nil {
		return nil, err
	}
	path := metadataPath(u)
	doc := auth.ProtectedResourceMetadataHandler(r.metadata(r.URL))
	root := doc
	if path != WellKnownPath {
		origin := *u
		origin.Path, origin.RawPath, origin.RawQuery = "", "", ""
		root = auth.ProtectedResourceMetadataHandler(r.metadata(origin.String()))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case path:
			doc.ServeHTTP(w, req)
		case WellKnownPath:
			root.ServeHTTP(w, req)
		default:
			http.NotFound(w, req)
		}
	}), nil
}

// RequireBearerToken returns the SDK's auth.RequireBearerToken middleware
// with the resource's metadata URL in its options, so that a 401 carries
// WWW-Authenticate: Bearer resource_metadata="...", followed by the tool
// scope check (RequireToolScopes). opts may be nil; its ResourceMetadataURL
// is replaced, its Scopes are still required of every request.
func (r *Resource) RequireBearerToken(verify auth.TokenVerifier, opts *auth.RequireBearerTokenOptions) (func(http.Handler) http.Handler, error) {
	meta, err := r.MetadataURL()
	if err != nil {
		return nil, err
	}
	o := auth.RequireBearerTokenOptions{}
	if opts != nil {
		o = *opts
	}
	o.ResourceMetadataURL = meta
	bearer := auth.RequireBearerToken(verify, &o)
	scopes := r.RequireToolScopes()
	return func(h http.Handler) http.Handler { return bearer(scopes(h)) }, nil
}

// Handler serves an MCP endpoint as a protected resource: the metadata
// documents at their well-known paths (MetadataHandler), and mcpHandler,
// behind RequireBearerToken, at exactly the resource URL's path (at every
// other path when that path is the root). Other paths get 404. Mount it at
// the root of the server. It routes by comparing paths, not with
// http.ServeMux patterns, so no Resource.URL makes it panic: a URL it
// cannot serve (one under WellKnownPath, say) is an error.
func (r *Resource) Handler(verify auth.TokenVerifier, opts *auth.RequireBearerTokenOptions, mcpHandler http.Handler) (http.Handler, error) {
	u, err := r.parse()
	if err != nil {
		return nil, err
	}
	meta, err := r.MetadataHandler()
	if err != nil {
		return nil, err
	}
	protect, err := r.RequireBearerToken(verify, opts)
	if err != nil {
		return nil, err
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	endpoint := protect(mcpHandler)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.Path
		switch {
		case p == WellKnownPath || strings.HasPrefix(p, WellKnownPath+"/"):
			meta.ServeHTTP(w, req)
		case p == path || path == "/":
			endpoint.ServeHTTP(w, req)
		default:
			http.NotFound(w, req)
		}
	}), nil
}

// maxScanBody bounds the request body RequireToolScopes reads to find the
// tools a request calls; a larger body is refused rather than passed on
// unexamined.
const maxScanBody = 16 << 20

// RequireToolScopes returns middleware that answers a request calling a
// tool (a JSON-RPC tools/call, alone or in a batch) whose token lacks a
// scope the tool needs (ToolScopes) with 403 and
//
//	WWW-Authenticate: Bearer error="insufficient_scope", scope="<the tool's scopes>", resource_metadata="<MetadataURL>"
//
// It reads the token from the request's context, where
// auth.RequireBearerToken puts it, and must run behind that middleware (a
// request without one gets 401). Other requests, and bodies that are not
// JSON-RPC, pass to the next handler unchanged (their body is read and
// replaced by a copy). A body larger than 16 MiB is refused with 413.
// The middleware is safe for concurrent use.
//
// The 403 is what a client needs to step up; the check that holds whatever
// a body's JSON looks like is ToolScopeMiddleware, on the MCP server, which
// sees each call as the SDK decoded it. Install both.
func (r *Resource) RequireToolScopes() func(http.Handler) http.Handler {
	meta, _ := r.MetadataURL() // "" for an invalid URL: the header then names none
	return func(next http.Handler) http.Handler {
		if len(r.ToolScopes) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody {
				next.ServeHTTP(w, req)
				return
			}
			body, err := io.ReadAll(io.LimitReader(req.Body, maxScanBody+1))
			req.Body.Close()
			if err != nil {
				http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			if len(body) > maxScanBody {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			info := auth.TokenInfoFromContext(req.Context())
			if info == nil {
				challenge(w, http.StatusUnauthorized, "no bearer token", nil, meta)
				return
			}
			for _, tool := range calledTools(body) {
				missing := r.missing(tool, info)
				if missing == nil {
					continue
				}
				challenge(w, http.StatusForbidden,
					fmt.Sprintf("%v: the tool %q needs %s", ErrInsufficientScope, tool, strings.Join(missing, " ")),
					r.ToolScopes[tool], meta)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

// missing returns the scopes that tool needs and info lacks, or nil.
func (r *Resource) missing(tool string, info *auth.TokenInfo) []string {
	need := r.ToolScopes[tool]
	if len(need) == 0 || info.Scopes == nil && r.AllowUnscoped {
		return nil
	}
	var out []string
	for _, s := range need {
		if !slices.Contains(info.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// challenge answers with code and a Bearer challenge: insufficient_scope
// with the scopes for a 403, the metadata URL always. Parameter values are
// RFC 9110 quoted-strings (quotedString).
func challenge(w http.ResponseWriter, code int, msg string, scopes []string, meta string) {
	var params []string
	if code == http.StatusForbidden {
		params = append(params, `error="insufficient_scope"`)
	}
	if len(scopes) > 0 {
		params = append(params, "scope="+quotedString(strings.Join(scopes, " ")))
	}
	if meta != "" {
		params = append(params, "resource_metadata="+quotedString(meta))
	}
	h := "Bearer"
	if len(params) > 0 {
		h += " " + strings.Join(params, ", ")
	}
	w.Header().Set("WWW-Authenticate", h)
	http.Error(w, msg, code)
}

// quotedString writes s as an RFC 9110 quoted-string (section 5.6.4): '"'
// and '\\' escaped with a backslash, other bytes as they are, except the
// control characters a quoted-string cannot carry (all but horizontal tab),
// which are dropped. Unlike Go's %q, it never writes \uXXXX or \xNN, which a
// client would read as the letters after the backslash.
func quotedString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' && c != '\t' || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// calledTools returns the names of the tools that the JSON-RPC message or
// batch in body calls. A message it cannot read is skipped: the MCP handler
// refuses it, or ToolScopeMiddleware checks it.
func calledTools(body []byte) []string {
	var raws []json.RawMessage
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		if json.Unmarshal(body, &raws) != nil {
			return nil
		}
	} else {
		raws = []json.RawMessage{body}
	}
	var tools []string
	for _, raw := range raws {
		var m struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &m) == nil && m.Method == "tools/call" {
			tools = append(tools, m.Params.Name)
		}
	}
	return tools
}

// ErrInsufficientScope is wrapped by the error ToolScopeMiddleware returns
// for a call whose token lacks a scope the tool needs.
var ErrInsufficientScope = errors.New("insufficient scope")

// ToolScopeMiddleware returns receiving middleware for the MCP server
// (mcp.Server.AddReceivingMiddleware) that refuses a tools/call whose token
// lacks a scope the tool needs (ToolScopes), with a JSON-RPC error that
// wraps ErrInsufficientScope and names the tool and the missing scopes. It
// checks each call as the SDK decoded it, behind RequireToolScopes' 403,
// which a client can act on. A request that carries no token information
// (over stdio, or over HTTP without RequireBearerToken) is not checked:
// who can start the server over stdio is trusted with every tool. The
// middleware is safe for concurrent use.
func (r *Resource) ToolScopeMiddleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			call, ok := req.(*mcp.CallToolRequest)
			if !ok || call.Params == nil || call.Extra == nil || call.Extra.TokenInfo == nil {
				return next(ctx, method, req)
			}
			if missing := r.missing(call.Params.Name, call.Extra.TokenInfo); missing != nil {
				return nil, fmt.Errorf("%w: the tool %q needs %s", ErrInsufficientScope, call.Params.Name, strings.Join(missing, " "))
			}
			return next(ctx, method, req)
		}
	}
}
