package rotate_test

import (
	"strings"
	"testing"

	"github.com/rotorhq/rotor/secrets/rotate"
)

// TestPasswordPolicy: a password holds every class, only allowed characters,
// and a policy that cannot be met, or that names characters a login would
// normalize, is refused.
func TestPasswordPolicy(t *testing.T) {
	p := rotate.PasswordPolicy{Length: 40, Exclude: rotate.DefaultExclude + "@:/"}
	for range 50 {
		pw, err := p.Password()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 40 || strings.ContainsAny(pw, rotate.DefaultExclude+"@:/") {
			t.Fatalf("password of %d characters, or with an excluded one", len(pw))
		}
		for _, class := range []string{rotate.Lower, rotate.Upper, rotate.Digits} {
			if !strings.ContainsAny(pw, class) {
				t.Fatal("a class is missing")
			}
		}
	}
	for name, bad := range map[string]rotate.PasswordPolicy{
		"short":       {Length: 8},
		"empty class": {Classes: []string{"ab"}, Exclude: "ab"},
		"non-ascii":   {Classes: []string{rotate.Lower, "é"}},
		"nbsp":        {Classes: []string{rotate.Lower, "\u00a0"}},
		"control":     {Classes: []string{rotate.Lower, "\t"}},
	} {
		if _, err := bad.Password(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
