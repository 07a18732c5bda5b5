package secrets_test

import (
	"fmt"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// TestCoalescingRecordsDoNotOutliveTheirRounds: every distinct set of keys
// passed to Refresh (each auth-failure retry makes new ones) must not leave
// a record behind for the Store's life.
func TestCoalescingRecordsDoNotOutliveTheirRounds(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 50; i++ {
		f.src.Set(fmt.Sprintf("k%d", i), "v")
		f.get(fmt.Sprintf("k%d", i))
	}
	for i := 0; i < 50; i++ {
		if err := f.store.Refresh(f.ctx(), "k0", fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Reload(f.ctx()); err != nil {
			t.Fatal(err)
		}
	}
	// A record goes once its runner has seen no further round wanted,
	// which it does right after the last caller is answered.
	eventually(t, "the coalescing records to go", func() bool { return secrets.Rounds(f.store) == 0 })
}
