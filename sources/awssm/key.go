package awssm

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// The staging labels the source knows by name.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

// secretRef is a parsed key: the secret and which of its versions is wanted.
type secretRef struct {
	key       string // as received, for Secrets and messages
	id        string // name or ARN, for SecretId
	stage     string // a staging label other than AWSCURRENT, or ""
	versionID string // a pinned version, or ""
}

// tracksCurrent reports whether the key follows AWSCURRENT, with AWSPREVIOUS
// as the previous version: the keys that BatchGetSecretValue can serve.
func (r secretRef) tracksCurrent() bool { return r.stage == "" && r.versionID == "" }

// parseKey parses "<name-or-ARN>[?versionStage=<label>|?versionId=<id>]".
// Secret names cannot hold '?', so the first one starts the query. Errors
// wrap secrets.ErrInvalid.
func parseKey(key string) (secretRef, error) {
	r := secretRef{key: key}
	id, query, hasQuery := strings.Cut(key, "?")
	if id == "" {
		return r, fmt.Errorf("awssm: key %s: %w: no secret name or ARN", keyquote.Quote(key), secrets.ErrInvalid)
	}
	r.id = id
	if !hasQuery || query == "" {
		return r, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return r, fmt.Errorf("awssm: key %s: %w: malformed query", keyquote.Quote(key), secrets.ErrInvalid)
	}
	for name, vs := range vals {
		if len(vs) != 1 || vs[0] == "" {
			return r, fmt.Errorf("awssm: key %s: %w: %s needs exactly one non-empty value", keyquote.Quote(key), secrets.ErrInvalid, keyquote.Quote(name))
		}
		switch name {
		case "versionStage":
			r.stage = vs[0]
		case "versionId":
			r.versionID = vs[0]
		default:
			return r, fmt.Errorf("awssm: key %s: %w: unknown query parameter %s (want versionStage or versionId)", keyquote.Quote(key), secrets.ErrInvalid, keyquote.Quote(name))
		}
	}
	if r.stage != "" && r.versionID != "" {
		return r, fmt.Errorf("awssm: key %s: %w: versionStage and versionId exclude each other", keyquote.Quote(key), secrets.ErrInvalid)
	}
	if r.stage == stageCurrent {
		r.stage = "" // the same as no query: AWSCURRENT with AWSPREVIOUS
	}
	return r, nil
}
