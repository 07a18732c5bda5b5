package secrets_test

import (
	"fmt"
	"testing"
)

func TestSubscribersLearnChanges(t *testing.T) {
	f := newFixture(t)
	f.src.Set("a", "1")
	f.src.Set("b", "1")
	f.get("a")
	f.get("b")
	sub := f.store.Subscribe()
	defer sub.Close()
	stuck := f.store.Subscribe() // never reads
	defer stuck.Close()

	for i := 2; i <= 50; i++ {
		f.src.Set("a", fmt.Sprint(i))
		if err := f.store.Refresh(f.ctx(), "a"); err != nil {
			t.Fatal(err)
		}
		got, err := sub.Next(f.ctx())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != "a" || got[0].NewVersion == got[0].OldVersion {
			t.Fatalf("change %d: %+v", i, got)
		}
	}
	// The stuck subscriber held nobody back and has one coalesced change.
	got := stuck.Changes()
	v, _ := f.store.Versions(f.ctx(), "a")
	if len(got) != 1 || got[0].OldVersion != "1" || got[0].NewVersion != v.Current.Version() {
		t.Fatalf("stuck subscriber: %+v", got)
	}
	if stuck.Changes() != nil {
		t.Fatal("changes were handed over twice")
	}
}

func TestChangesCarryNoValues(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", canary+"1")
	f.get("k")
	sub := f.store.Subscribe()
	defer sub.Close()
	f.src.Set("k", canary+"2")
	if err := f.store.Refresh(f.ctx(), "k"); err != nil {
		t.Fatal(err)
	}
	got, err := sub.Next(f.ctx())
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, fmt.Sprintf("%#v", got))
}
