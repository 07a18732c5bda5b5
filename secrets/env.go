package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Getenv is a drop-in for os.Getenv in code that reads credentials from the
// environment. When the variable holds a reference whose scheme the Store has
// a source for (DB_PASSWORD=awssm://mcp/prod#dbPassword), Getenv returns the
// secret's current value, served from the Store and kept current by it, so
// calling Getenv at the point of use (not once at start-up) picks up
// rotations. Any other value, including URLs of schemes the Store does not
// serve, such as postgres://..., is returned as it is, and an unset variable
// gives "" as os.Getenv does.
//
// When name is unset but name_FILE holds a path (the convention of Docker
// secrets and many official images) and the Store has a source for the
// "file" scheme, the secret is read from that file and kept current.
//
// Like os.Getenv, Getenv cannot report an error: when a reference cannot be
// resolved it returns "" and logs the error (key and cause, never a value)
// through the Store's logger. Use LookupEnv where the caller must tell a
// failure from an empty value. A first resolution waits at most the Store's
// fetch timeout.
func (s *Store) Getenv(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.fetchTimeout)
	defer cancel()
	v, err := s.LookupEnv(ctx, name)
	var ge *Error
	if errors.As(err, &ge) && ge.Op == "getenv" {
		return "" // unset, as os.Getenv says it
	}
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "secrets: Getenv could not resolve a reference",
			slog.String("env", name), slog.String("error", err.Error()))
		return ""
	}
	return v.Reveal()
}

// LookupEnv is Getenv with errors. It returns the secret behind the
// reference the variable name holds, or, for a plain value, a Secret holding
// that value (with source "env" and no version). An unset variable yields an
// *Error wrapping ErrNotFound; a reference that cannot be resolved yields
// Get's error. A NAME_FILE path is read through the file source as a
// reference, so a '#' in it selects a field.
func (s *Store) LookupEnv(ctx context.Context, name string) (Secret, error) {
	raw, ok := os.LookupEnv(name)
	if !ok {
		if path, ok := os.LookupEnv(name + "_FILE"); ok && path != "" && s.servesRef("file://") {
			return s.Get(ctx, "file://"+path)
		}
		return Secret{}, &Error{Op: "getenv", Key: name, Err: fmt.Errorf("%w: environment variable not set", ErrNotFound)}
	}
	if !s.servesRef(raw) {
		return NewSecretString(name, "", raw).with(name, "env", s.clock.Now()), nil
	}
	return s.Get(ctx, raw)
}

// servesRef reports whether v is a reference to a scheme the Store serves.
func (s *Store) servesRef(v string) bool {
	if !IsRef(v) {
		return false
	}
	i := strings.Index(v, "://")
	_, ok := s.cfg.sources[strings.ToLower(v[:i])]
	return ok
}
