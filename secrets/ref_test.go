package secrets

import "testing"

// TestBaseOfIsRefBase: the allocation-free base of a key is the parsed
// reference's base, for every form of key.
func TestBaseOfIsRefBase(t *testing.T) {
	for _, key := range []string{
		"db", "db#password", "a#b#c", "file:///run/secrets/db#password", "FILE:///x#y",
		"Env://NAME", "env://NAME", "awssm://prod/db?versionStage=X#/a/b", "vault://secret/x",
		"://weird", "x://", "x://#f",
	} {
		ref, err := ParseRef(key)
		if err != nil {
			continue
		}
		if got, want := baseOf(key, ref), ref.base(); got != want {
			t.Errorf("baseOf(%q) = %q, want %q", key, got, want)
		}
	}
}
