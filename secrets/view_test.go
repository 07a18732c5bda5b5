package secrets_test

import "testing"

// TestViewKeepsOneVersionOfAValue: a field first read through a View after
// another field of the same value must come from the same version: db#user
// is served from v1 in the View's snapshot, and db#password, read for the
// first time after a rotation, must not come from v2.
func TestViewKeepsOneVersionOfAValue(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", `{"user":"u1","password":"p1"}`)
	f.get("db#user") // the server reads the user name at start-up
	v := f.store.View()
	ctx := f.ctx()
	u, err := v.Get(ctx, "db#user")
	if err != nil {
		t.Fatal(err)
	}
	// Rotation lands in the middle of the request.
	f.src.Set("db", `{"user":"u2","password":"p2"}`)
	if err := f.store.Refresh(ctx, "db#user"); err != nil {
		t.Fatal(err)
	}
	p, err := v.Get(ctx, "db#password")
	if err != nil {
		t.Fatal(err)
	}
	if u.Reveal()+"/"+p.Reveal() != "u1/p1" {
		t.Fatalf("one View paired %s with %s: two versions of one value", u.Reveal(), p.Reveal())
	}
}
