package secrets_test

import (
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "1")
	f.src.Set("k", "2")
	f.get("k")
	f.clock.Advance(10 * time.Second)
	st := f.status("k")
	if !st.Loaded || st.Version != "2" || st.PreviousVersion != "1" || st.Age != 10*time.Second ||
		!st.FetchedAt.Equal(epoch) || st.Source != secrets.DefaultSourceName {
		t.Fatalf("status: %+v", st)
	}
	if _, ok := f.store.Status("unknown"); ok {
		t.Fatal("Status of an unknown key")
	}
	if all := f.store.Statuses(); len(all) != 1 || all[0].Key != "k" {
		t.Fatalf("Statuses: %+v", all)
	}
}
