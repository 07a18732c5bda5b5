package vault

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

func TestDatabaseOptionsRefuse(t *testing.T) {
	c := newClient(t, deadAddress(t), "t")
	for name, opt := range map[string]Option{
		"WithDatabaseMount empty":    WithDatabaseMount("/"),
		"WithDatabaseMount segments": WithDatabaseMount("a//b"),
		"WithDatabaseMount dots":     WithDatabaseMount("a/../b"),
		"WithLeaseFraction 0":        WithLeaseFraction(0),
		"WithLeaseFraction 1":        WithLeaseFraction(1),
		"WithLeaseFraction negative": WithLeaseFraction(-0.5),
		"WithLeaseFraction NaN":      WithLeaseFraction(math.NaN()),
		"WithClock nil":              WithClock(nil),
		"WithLeaseEvents nil":        WithLeaseEvents(nil),
	} {
		if _, err := New(c, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := New(c, WithDatabaseMount("/team/db/"), WithLeaseFraction(0.5), WithRevokeOnClose())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.declared["team/db"] != engineDatabase || s.db.fraction != 0.5 || !s.db.revoke {
		t.Fatalf("options not applied: declared %v, fraction %v, revoke %v", s.declared, s.db.fraction, s.db.revoke)
	}
}

func TestParseDatabaseKey(t *testing.T) {
	for rel, want := range map[string]struct {
		ok     bool
		static bool
	}{
		"creds/app":             {ok: true},
		"static-creds/app":      {ok: true, static: true},
		"creds/app-1.v2":        {ok: true},
		"creds":                 {},
		"creds/":                {},
		"creds/app/x":           {},
		"roles/app":             {},
		"static-roles/app":      {},
		"config/pg":             {},
		"rotate-role/app":       {},
		"static-creds/app/more": {},
	} {
		k := secretKey{key: "database/" + rel, path: "database/" + rel}
		dk, err := parseDatabaseKey(k, location{mount: "database", rel: rel, version: engineDatabase})
		if want.ok != (err == nil) {
			t.Errorf("%s: err %v, want ok %v", rel, err, want.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", rel, err)
			}
			continue
		}
		if dk.static != want.static || dk.path != "database/"+rel {
			t.Errorf("%s: %+v", rel, dk)
		}
	}
}

func TestLeaseDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &lease{start: t0, end: t0.Add(time.Hour)}
	if got := l.due(DefaultLeaseFraction); !got.Equal(t0.Add(40 * time.Minute)) {
		t.Errorf("due at two thirds = %s", got)
	}
	if got := l.due(0.25); !got.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("due at a quarter = %s", got)
	}
	// A renewal moves the term: start is the renewal, end what it granted.
	l.start, l.end = t0.Add(40*time.Minute), t0.Add(100*time.Minute)
	if got := l.due(DefaultLeaseFraction); !got.Equal(t0.Add(80 * time.Minute)) {
		t.Errorf("due after a renewal = %s", got)
	}
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct {
		in   any
		want time.Duration
		ok   bool
	}{
		{json.Number("3599"), 3599 * time.Second, true},
		{json.Number("2.5"), 2500 * time.Millisecond, true},
		{float64(60), time.Minute, true},
		{7, 7 * time.Second, true},
		{json.Number("-3"), 0, true},
		{json.Number("x"), 0, false},
		{"60", 0, false},
		{nil, 0, false},
	} {
		got, ok := seconds(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("seconds(%#v) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestDatabaseErrors(t *testing.T) {
	ctx := context.Background()
	resp := func(status int, msgs ...string) error {
		return &api.ResponseError{HTTPMethod: "GET", URL: "http://vault/v1/x", StatusCode: status, Errors: msgs}
	}
	for _, c := range []struct {
		err  error
		want error
	}{
		{resp(400, "unknown role: app"), secrets.ErrNotFound},
		{resp(400, "failed to renew entry: error during renew: could not find role with name \"app\""), secrets.ErrNotFound},
		{resp(400, "some other problem"), secrets.ErrInvalid},
		{resp(403, "permission denied"), secrets.ErrPermission},
		{resp(503, "Vault is sealed"), secrets.ErrTransient},
		{resp(500, "failed to execute query"), secrets.ErrTransient},
	} {
		err := databaseError(ctx, "read", "database/creds/app", c.err)
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v, want %v", c.err, err, c.want)
		}
		var re *api.ResponseError
		if !errors.As(err, &re) {
			t.Errorf("%v: the response is not in the chain", err)
		}
	}
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{resp(400, "lease not found"), true},
		{resp(400, "invalid lease"), true},
		{resp(400, "lease expired"), true},
		{resp(400, "lease is expired and has failed previous revocation attempts"), true},
		{resp(400, "lease is not renewable"), false},
		{resp(403, "invalid lease"), false},
		{resp(503, "Vault is sealed"), false},
		{errors.New("lease not found"), false},
	} {
		if got := leaseGone(classify(ctx, "renew the lease of", "database/creds/app", c.err)); got != c.gone {
			t.Errorf("leaseGone(%v) = %v", c.err, got)
		}
	}
}

func TestLeaseEventKindString(t *testing.T) {
	for k, want := range map[LeaseEventKind]string{
		LeaseCreated: "created", LeaseRenewed: "renewed", LeaseEnding: "ending",
		LeaseLost: "lost", LeaseExpired: "expired", LeaseRevoked: "revoked", 0: "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", k, got, want)
		}
	}
}

// A source that holds no lease revokes nothing on Close, and sends nothing.
func TestRevokeOnCloseWithoutLeases(t *testing.T) {
	s, err := New(newClient(t, deadAddress(t), "t"), WithRevokeOnClose())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A database key on a closed source fails with ErrClosed before any request.
func TestDatabaseFetchAfterClose(t *testing.T) {
	s, err := New(newClient(t, deadAddress(t), "t"), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, key := range []string{"database/creds/app", "database/static-creds/app"} {
		if _, err := s.Fetch(context.Background(), key); !errors.Is(err, secrets.ErrClosed) {
			t.Errorf("Fetch(%s) after Close: %v", key, err)
		}
	}
}
