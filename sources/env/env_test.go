package env_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
	"github.com/rotorhq/rotor/sources/env"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness names variables after the test so subtests do not collide.
type harness struct{ prefix string }

func (h harness) Key(name string) string { return strings.ToUpper(name) }
func (h harness) Set(_ context.Context, name, value string) error {
	return os.Setenv(h.prefix+strings.ToUpper(name), value)
}
func (h harness) Delete(_ context.Context, name string) error {
	return os.Unsetenv(h.prefix + strings.ToUpper(name))
}

func TestConformance(t *testing.T) {
	n := 0
	sourcetest.Run(t, sourcetest.Config{
		New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
			n++
			h := harness{prefix: "ROTOR_CONF_" + strings.Repeat("X", n) + "_"}
			t.Cleanup(func() {
				for _, kv := range os.Environ() {
					if strings.HasPrefix(kv, h.prefix) {
						os.Unsetenv(kv[:strings.IndexByte(kv, '=')])
					}
				}
			})
			return env.New(env.WithPrefix(h.prefix)), h
		},
	})
}

func TestEmptyIsInvalid(t *testing.T) {
	t.Setenv("ROTOR_EMPTY", "")
	_, err := env.New().Fetch(context.Background(), "ROTOR_EMPTY")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestBadName(t *testing.T) {
	for _, name := range []string{"", "A=B", "A\x00B"} {
		if _, err := env.New().Fetch(context.Background(), name); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Fetch(%q): err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestErrorHoldsNoValue(t *testing.T) {
	const canary = "canary-value-1234"
	t.Setenv("ROTOR_CANARY", canary)
	st, err := secrets.New(nil, secrets.WithSource("env", env.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "env://ROTOR_CANARY#field")
	if !errors.Is(err, secrets.ErrInvalid) || strings.Contains(err.Error(), canary) {
		t.Fatalf("field of a non-JSON value: err = %v", err)
	}
}

// TestKeysInErrorsAreBounded asks for a 1 MiB name and names holding a
// newline: the errors are short and on one line.
func TestKeysInErrorsAreBounded(t *testing.T) {
	t.Setenv("ROTOR_EMPTY_A\nB", "")
	src := env.New()
	for name, key := range map[string]string{
		"1 MiB name":       strings.Repeat("K", 1<<20),
		"1 MiB bad name":   strings.Repeat("=", 1<<20),
		"newline, unset":   "ROTOR_UNSET_A\nB",
		"newline, empty":   "ROTOR_EMPTY_A\nB",
		"newline, invalid": "A\n=B",
	} {
		_, err := src.Fetch(context.Background(), key)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%s: message of %d bytes, or not on one line: %.300q", name, len(msg), msg)
		}
	}
}
