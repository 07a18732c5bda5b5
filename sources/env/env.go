// Package env is a secrets.Source that reads environment variables: a key is
// a variable's name, so the reference env://DB_PASSWORD names $DB_PASSWORD.
//
// The environment keeps no history, so a secret read from it has no previous
// version. Its version id is secrets.ContentVersion of the value: it changes
// when the value does (through os.Setenv in the process itself; a process's environment does
// not change from outside). An unset variable is secrets.ErrNotFound; a
// variable set to the empty string is secrets.ErrInvalid, since an empty
// credential is a configuration mistake that should not replace a good one.
//
// For credentials that rotate, point the variable at another source instead
// of holding the value: DB_PASSWORD=awssm://prod/db#password, read with
// (*secrets.Store).Getenv.
package env

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Source reads environment variables.
type Source struct {
	prefix string
}

// An Option configures a Source.
type Option func(*Source)

// WithPrefix makes key K read the variable prefix+K, so env://DB_PASSWORD with
// the prefix "APP_" reads $APP_DB_PASSWORD.
func WithPrefix(prefix string) Option {
	return func(s *Source) { s.prefix = prefix }
}

// New returns a Source over the process environment.
func New(opts ...Option) *Source {
	s := &Source{}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Fetch returns the current value of the variable named key.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Versions{}, err
	}
	name := s.prefix + key
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return secrets.Versions{}, fmt.Errorf("env: %s is not a variable name: %w", keyquote.Quote(name), secrets.ErrInvalid)
	}
	v, ok := os.LookupEnv(name)
	if !ok {
		return secrets.Versions{}, fmt.Errorf("env: variable %s is not set: %w", keyquote.Quote(name), secrets.ErrNotFound)
	}
	if v == "" {
		return secrets.Versions{}, fmt.Errorf("env: variable %s is empty: %w", keyquote.Quote(name), secrets.ErrInvalid)
	}
	return secrets.Versions{Current: secrets.NewSecretString(key, secrets.ContentVersion([]byte(v)), v)}, nil
}
