package vault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// TestWritesRefusedWithoutIO: what the write side refuses before it asks
// Vault anything (a KV v1 mount, an empty value, a closed source), with
// the class the contract names and no value in the message.
func TestWritesRefusedWithoutIO(t *testing.T) {
	const canary = "canary-5d1e-must-never-leak"
	s, err := New(newClient(t, deadAddress(t), "t"), WithMount("legacy", 1), WithMount("secret", 2))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(what string, err error, class error) {
		t.Helper()
		if !errors.Is(err, class) {
			t.Fatalf("%s: %v, want %v", what, err, class)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("%s: the error holds the value", what)
		}
	}
	_, err = s.Stage(ctx, "legacy/db", secrets.StageRequest{Current: "x", Value: []byte(canary)})
	check("Stage on KV v1", err, errors.ErrUnsupported)
	check("Stage on KV v1", err, secrets.ErrInvalid)
	check("Promote on KV v1", s.Promote(ctx, "legacy/db", "a", "b"), errors.ErrUnsupported)
	check("Discard on KV v1", s.Discard(ctx, "legacy/db", "a"), errors.ErrUnsupported)
	check("RemovePrevious on KV v1", s.RemovePrevious(ctx, "legacy/db", "a"), errors.ErrUnsupported)
	_, err = s.SaveRotation(ctx, "legacy/db", secrets.Rotation{ID: "r"})
	check("SaveRotation on KV v1", err, errors.ErrUnsupported)
	if rec, err := s.LoadRotation(ctx, "legacy/db"); err != nil || rec.Revision != "" {
		t.Fatalf("LoadRotation on KV v1 = %+v, %v; want the zero record", rec, err)
	}

	_, err = s.Stage(ctx, "secret/db", secrets.StageRequest{Current: "1"})
	check("Stage of an empty value", err, secrets.ErrInvalid)
	_, err = s.Stage(ctx, "secret/db", secrets.StageRequest{Value: []byte(canary)})
	check("Stage without a current version", err, secrets.ErrInvalid)
	_, err = s.Stage(ctx, "secret//db", secrets.StageRequest{Current: "1", Value: []byte(canary)})
	check("Stage of a malformed key", err, secrets.ErrInvalid)
	_, err = s.SaveRotation(ctx, "secret/db", secrets.Rotation{ID: "r", Revision: "seven"})
	check("SaveRotation on a revision that is no version", err, secrets.ErrConflict)
	_, err = s.SaveRotation(ctx, "secret/db", secrets.Rotation{ID: "r", Notes: map[string]string{"big": strings.Repeat("x", secrets.MaxRotationSize)}})
	check("SaveRotation of a record over MaxRotationSize", err, secrets.ErrInvalid)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Stage(ctx, "secret/db", secrets.StageRequest{Current: "1", Value: []byte(canary)})
	check("Stage after Close", err, secrets.ErrClosed)
	check("Promote after Close", s.Promote(ctx, "secret/db", "2", "1"), secrets.ErrClosed)
	_, err = s.LoadRotation(ctx, "secret/db")
	check("LoadRotation after Close", err, secrets.ErrClosed)
}

func TestStagedDataWhole(t *testing.T) {
	s := &Source{}
	k := secretKey{key: "secret/db", path: "secret/db"}
	data, err := s.stagedData(context.Background(), "stage", k, location{}, 1, []byte(` {"password":"p","port":5432} `))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := valueOf(data, ""); string(got) != `{"password":"p","port":5432}` {
		t.Fatalf("staged %s", got)
	}
	for _, bad := range []string{`"text"`, `[1]`, `null`, `{"a":1} {"b":2}`, `not json canary`} {
		_, err := s.stagedData(context.Background(), "stage", k, location{}, 1, []byte(bad))
		if !errors.Is(err, secrets.ErrInvalid) || strings.Contains(err.Error(), "canary") {
			t.Errorf("stage %s: %v, want ErrInvalid without the value", bad, err)
		}
	}
}

func TestCasMismatch(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&api.ResponseError{StatusCode: 400, Errors: []string{"check-and-set parameter did not match the current version"}}, true},
		{&api.ResponseError{StatusCode: 400, Errors: []string{"check-and-set parameter required for this call"}}, false},
		{&api.ResponseError{StatusCode: 403, Errors: []string{"check-and-set parameter did not match the current version"}}, false},
		{errors.New("check-and-set parameter did not match the current version"), false},
	} {
		if got := casMismatch(tc.err); got != tc.want {
			t.Errorf("casMismatch(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
