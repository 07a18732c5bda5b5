package vault

import (
	"errors"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

func TestParseKey(t *testing.T) {
	good := []struct {
		key, path, field string
	}{
		{"secret/mcp/db", "secret/mcp/db", ""},
		{"/secret/mcp/db", "secret/mcp/db", ""},
		{"secret/mcp/db?field=password", "secret/mcp/db", "password"},
		{"secret/mcp/db?field=a%2Fb", "secret/mcp/db", "a/b"},
		{"secret/mcp/db?", "secret/mcp/db", ""},
		{"team/kv/app", "team/kv/app", ""},
	}
	for _, tc := range good {
		k, err := parseKey(tc.key)
		if err != nil {
			t.Errorf("parseKey(%q): %v", tc.key, err)
			continue
		}
		if k.path != tc.path || k.field != tc.field || k.key != tc.key {
			t.Errorf("parseKey(%q) = %+v, want path %q field %q", tc.key, k, tc.path, tc.field)
		}
	}
	bad := []string{
		"", "/", "secret/", "secret//db", "secret/./db", "secret/../db", "..",
		"secret/db?version=2", "secret/db?field=", "secret/db?field=a&field=b", "secret/db?%zz",
	}
	for _, key := range bad {
		if _, err := parseKey(key); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("parseKey(%q): err = %v, want ErrInvalid", key, err)
		}
	}
}

func TestUnderMount(t *testing.T) {
	mounts := map[string]int{"secret": 2, "team": 1, "team/kv": 2}
	cases := []struct {
		path       string
		mount, rel string
		version    int
		ok         bool
	}{
		{"secret/mcp/db", "secret", "mcp/db", 2, true},
		{"team/kv/app/db", "team/kv", "app/db", 2, true},
		{"team/other", "team", "other", 1, true},
		{"secret", "", "", 0, false},
		{"secretive/x", "", "", 0, false},
		{"kv/x", "", "", 0, false},
	}
	for _, tc := range cases {
		loc, ok := underMount(mounts, tc.path)
		if ok != tc.ok || loc.mount != tc.mount || loc.rel != tc.rel || loc.version != tc.version {
			t.Errorf("underMount(%q) = %+v, %v; want %q %q v%d %v", tc.path, loc, ok, tc.mount, tc.rel, tc.version, tc.ok)
		}
	}
}
