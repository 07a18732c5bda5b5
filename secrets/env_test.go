package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

func TestGetenv(t *testing.T) {
	src := newCtl()
	src.Set("prod/db", `{"password":"pw1"}`)
	files := newCtl()
	files.Set("/run/secrets/api", "from-file")
	st, err := secrets.New(nil, secrets.WithSource("mem", src), secrets.WithSource("file", files))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	t.Setenv("DB_PASSWORD", "mem://prod/db#password")
	t.Setenv("DATABASE_URL", "postgres://u:p@h/db") // not a scheme the Store serves
	t.Setenv("PLAIN", "plain-value")
	t.Setenv("API_KEY_FILE", "/run/secrets/api")
	t.Setenv("BROKEN", "mem://missing")

	for name, want := range map[string]string{
		"DB_PASSWORD":  "pw1",
		"DATABASE_URL": "postgres://u:p@h/db",
		"PLAIN":        "plain-value",
		"API_KEY":      "from-file",
		"UNSET_VAR":    "",
		"BROKEN":       "",
	} {
		if got := st.Getenv(name); got != want {
			t.Errorf("Getenv(%q) = %q, want %q", name, got, want)
		}
	}

	// The value is hot: a rotation shows in the next call.
	src.Set("prod/db", `{"password":"pw2"}`)
	if err := st.Refresh(context.Background(), "mem://prod/db#password"); err != nil {
		t.Fatal(err)
	}
	if got := st.Getenv("DB_PASSWORD"); got != "pw2" {
		t.Fatalf("after rotation Getenv = %q", got)
	}

	ctx := context.Background()
	if _, err := st.LookupEnv(ctx, "BROKEN"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("LookupEnv of a broken reference: %v", err)
	}
	if _, err := st.LookupEnv(ctx, "UNSET_VAR"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("LookupEnv of an unset variable: %v", err)
	}
	s, err := st.LookupEnv(ctx, "PLAIN")
	if err != nil || s.Reveal() != "plain-value" || s.Source() != "env" {
		t.Fatalf("LookupEnv of a plain value: %v", err)
	}
}

func TestGetenvOfUnsetVariableIsQuiet(t *testing.T) {
	var logs bytes.Buffer
	st, err := secrets.New(nil, secrets.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.Getenv("ROTOR_SURELY_UNSET_VARIABLE"); got != "" || logs.Len() != 0 {
		t.Fatalf("Getenv of an unset variable: %q, logged %q", got, logs.String())
	}
}

// TestGetenvBoundedByFetchTimeout: Getenv cannot take a context, so it must
// bound its own wait: a source that ignores ctx must not hold it past the
// fetch timeout. (The timeout is the Store's real-time fetch timeout; the
// test asserts that Getenv returns, not how fast.)
func TestGetenvBoundedByFetchTimeout(t *testing.T) {
	src := &stubbornSrc{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	st, err := secrets.New(nil, secrets.WithSource("slow", src), secrets.WithFetchTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer close(src.gate) // before Close, which waits for the fetch
	t.Setenv("SLOW_KEY", "slow://k")
	got := make(chan string, 1)
	go func() { got <- st.Getenv("SLOW_KEY") }()
	select {
	case v := <-got:
		if v != "" {
			t.Fatalf("Getenv = %q, want \"\" for a reference that could not be resolved", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Getenv still waits on a source that ignores its context")
	}
}
