package vault

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// secretKey is a parsed key: "<mount>/<path>[?field=<name>]".
type secretKey struct {
	key   string // as received, for Secrets
	path  string // "<mount>/<path>", without leading slashes or query
	field string // a top-level field to serve alone, or ""
}

// parseKey parses a key. Errors wrap secrets.ErrInvalid.
func parseKey(key string) (secretKey, error) {
	k := secretKey{key: key}
	p, query, hasQuery := strings.Cut(key, "?")
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return k, newError(secrets.ErrInvalid, "parse key", key, "no path", nil)
	}
	if !validPath(p) {
		return k, newError(secrets.ErrInvalid, "parse key", key,
			"want <mount>/<path>, without empty, \".\" or \"..\" segments or a trailing slash", nil)
	}
	k.path = p
	if !hasQuery || query == "" {
		return k, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return k, newError(secrets.ErrInvalid, "parse key", key, "malformed query", nil)
	}
	for name, vs := range vals {
		if name != "field" {
			return k, newError(secrets.ErrInvalid, "parse key", key, "unknown query parameter "+quoteName(name)+" (want field)", nil)
		}
		if len(vs) != 1 || vs[0] == "" {
			return k, newError(secrets.ErrInvalid, "parse key", key, "field needs exactly one non-empty value", nil)
		}
		k.field = vs[0]
	}
	return k, nil
}

// validPath reports whether p is a relative Vault path: non-empty segments
// that are not "." or "..", and no trailing slash.
func validPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// quoteName quotes a name (a field, a query parameter, a mount, an engine's
// type) for a message, cut to a bounded length and on one line.
func quoteName(s string) string { return keyquote.Quote(s) }

// location is where a key's secret lives: its mount, the engine's version
// (KV 1 or 2, or engineDatabase) and the path within the mount.
type location struct {
	mount   string // without slashes at either end
	rel     string
	version int
}

// underMount finds, among mounts, the longest one that p lies under.
func underMount(mounts map[string]int, p string) (location, bool) {
	var best location
	for m, v := range mounts {
		if len(m) > len(best.mount) && strings.HasPrefix(p, m+"/") {
			best = location{mount: m, rel: p[len(m)+1:], version: v}
		}
	}
	return best, best.mount != ""
}

// locate finds the mount of k: a declared one, one detected before, or one
// that Vault names now (GET sys/internal/ui/mounts/<path>, as the vault
// command does), which is then remembered for the life of the Source.
func (s *Source) locate(ctx context.Context, k secretKey) (location, error) {
	if loc, ok := underMount(s.declared, k.path); ok {
		return loc, nil
	}
	s.mountsMu.RLock()
	loc, ok := underMount(s.mounts, k.path)
	s.mountsMu.RUnlock()
	if ok {
		return loc, nil
	}
	if _, ok := s.declared[k.path]; ok {
		return location{}, newError(secrets.ErrInvalid, "locate", k.path, "the key names a mount, not a secret", nil)
	}

	p := "sys/internal/ui/mounts/" + k.path
	var sec *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		var re *api.ResponseError
		var oe *opError // a failed login: reported as it is
		if !errors.As(err, &oe) && errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			// Vault answers 403 both for a path under no mount and for a
			// token without access to the mount.
			return location{}, newError(secrets.ErrPermission, "detect the mount of", k.path,
				"no mount that the token may access holds the key (declare the mount with WithMount to skip detection): "+describe(re), re)
		}
		return location{}, classify(ctx, "detect the mount of", k.path, err)
	}
	if sec == nil || sec.Data == nil {
		return location{}, newError(secrets.ErrInvalid, "detect the mount of", k.path,
			"Vault did not say (declare the mount with WithMount)", nil)
	}
	mount, _ := sec.Data["path"].(string)
	typ, _ := sec.Data["type"].(string)
	mount = strings.Trim(mount, "/")
	if typ != "kv" && typ != "generic" && typ != "database" {
		return location{}, newError(secrets.ErrInvalid, "detect the mount of", k.path,
			"mount "+quoteName(mount)+" is a "+quoteName(typ)+" secrets engine, not KV or database", nil)
	}
	if mount == k.path {
		return location{}, newError(secrets.ErrInvalid, "locate", k.path, "the key names a mount, not a secret", nil)
	}
	if mount == "" || !strings.HasPrefix(k.path, mount+"/") {
		return location{}, newError(secrets.ErrInvalid, "detect the mount of", k.path,
			"Vault named mount "+quoteName(mount)+", which does not hold the key (declare the mount with WithMount)", nil)
	}
	version := 1
	if opts, ok := sec.Data["options"].(map[string]any); ok {
		if v, _ := opts["version"].(string); v == "2" {
			version = 2
		}
	}
	if typ == "database" {
		version = engineDatabase
	}
	s.mountsMu.Lock()
	s.mounts[mount] = version
	s.mountsMu.Unlock()
	return location{mount: mount, rel: k.path[len(mount)+1:], version: version}, nil
}
