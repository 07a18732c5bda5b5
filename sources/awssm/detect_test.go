package awssm_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
)

// TestFetchIfChangedCosts counts the calls of a single-key poll.
func TestFetchIfChangedCosts(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	client := srv.Client()
	srv.Put("det/key", "one")
	second := srv.Put("det/key", "two")
	known, err := src.Fetch(ctx, "det/key")
	if err != nil {
		t.Fatal(err)
	}
	poll := func(known secrets.Versions) (secrets.Result, map[string]int) {
		t.Helper()
		srv.ResetCalls()
		r := src.FetchIfChanged(ctx, secrets.Request{Key: "det/key", Known: known})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r, srv.Calls()
	}

	// Unchanged: one DescribeSecret, no value read.
	if r, c := poll(known); !r.Unchanged || c["DescribeSecret"] != 1 || len(c) != 1 {
		t.Fatalf("unchanged: %+v %v", r, c)
	}
	// createSecret stages a pending version: a change, which reads the new
	// version alone.
	pending := srv.Put("det/key", "three", "AWSPENDING")
	r, c := poll(known)
	if r.Unchanged || r.Versions.Pending.Reveal() != "three" || r.Versions.Current.Version() != second ||
		c["DescribeSecret"] != 1 || c["GetSecretValue"] != 1 || len(c) != 2 {
		t.Fatalf("with AWSPENDING: %+v %v", r, c)
	}
	staged := r.Versions
	// Polled again during the rotation: unchanged, one call.
	if r, c := poll(staged); !r.Unchanged || len(c) != 1 {
		t.Fatalf("with AWSPENDING known: %+v %v", r, c)
	}
	// finishSecret: AWSCURRENT moves to the pending version, which keeps
	// AWSPENDING (a pending that is current is none). One DescribeSecret and
	// no read: the new current and the new previous are both known.
	if _, err := client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("det/key"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(pending), RemoveFromVersionId: aws.String(second),
	}); err != nil {
		t.Fatal(err)
	}
	r, c = poll(staged)
	if r.Unchanged || r.Versions.Current.Reveal() != "three" || r.Versions.Previous.Version() != second || !r.Versions.Pending.IsZero() || len(c) != 1 {
		t.Fatalf("after the rotation: %v, current %q, pending %q", c, r.Versions.Current.Reveal(), r.Versions.Pending.Version())
	}
	// Polled with versions known from before the rotation began, the new
	// current is read.
	r, c = poll(known)
	if r.Unchanged || r.Versions.Current.Reveal() != "three" || c["DescribeSecret"] != 1 || c["GetSecretValue"] != 1 {
		t.Fatalf("after the rotation, the pending version not known: %v", c)
	}
	rotated := r.Versions
	// A rollback (AWSCURRENT back to the old version) reads nothing: both
	// versions are known. AWSPENDING stays on the version rolled back from,
	// which is no longer current: the pending version again.
	if _, err := client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("det/key"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(second), RemoveFromVersionId: aws.String(pending),
	}); err != nil {
		t.Fatal(err)
	}
	r, c = poll(rotated)
	if r.Unchanged || r.Versions.Current.Version() != second || r.Versions.Previous.Version() != pending || r.Versions.Pending.Version() != pending || len(c) != 1 {
		t.Fatalf("after a rollback: %v", c)
	}
}

func TestFetchIfChangedPinnedAndStaged(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	v1 := srv.Put("pin/key", "one")
	srv.Put("pin/key", "two")
	pinned := "pin/key?versionId=" + v1
	known, err := src.Fetch(ctx, pinned)
	if err != nil || known.Current.Reveal() != "one" || !known.Previous.IsZero() {
		t.Fatalf("pinned Fetch: %v", err)
	}
	srv.Put("pin/key", "three") // v1 loses its last label; still readable by id
	srv.ResetCalls()
	if r := src.FetchIfChanged(ctx, secrets.Request{Key: pinned, Known: known}); r.Err != nil || !r.Unchanged {
		t.Fatalf("pinned poll: %+v", r)
	}
	if v, err := src.Fetch(ctx, pinned); err != nil || v.Current.Reveal() != "one" {
		t.Fatalf("deprecated pinned version: %v", err)
	}

	staged := "pin/key?versionStage=AWSPREVIOUS"
	known, err = src.Fetch(ctx, staged)
	if err != nil || known.Current.Reveal() != "two" {
		t.Fatalf("staged Fetch: %v", err)
	}
	srv.Put("pin/key", "four")
	r := src.FetchIfChanged(ctx, secrets.Request{Key: staged, Known: known})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "three" || !r.Versions.Previous.IsZero() {
		t.Fatalf("staged poll after a rotation: %+v", r)
	}
	// A label that no version carries any more is not found.
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "pin/key?versionStage=AWSPENDING", Known: known})
	if !errors.Is(r.Err, secrets.ErrNotFound) {
		t.Fatalf("missing label: %v", r.Err)
	}
	if _, err := src.Fetch(ctx, "pin/key?versionStage=AWSPENDING"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing label: %v", err)
	}
}

func TestKeys(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	id := srv.Put("k/name", "v")
	arn := srv.ARN("k/name")
	for _, key := range []string{
		"k/name", arn, arn[:len(arn)-7], "k/name?versionStage=AWSCURRENT", "k/name?versionId=" + id,
		"k/name?", "k/name?versionStage=AWS%43URRENT",
	} {
		v, err := src.Fetch(ctx, key)
		if err != nil || v.Current.Reveal() != "v" || v.Current.Version() != id || v.Current.Key() != key {
			t.Errorf("Fetch(%q): %v", key, err)
		}
	}
	srv.ResetCalls()
	for _, key := range []string{
		"", "?versionStage=AWSCURRENT", "k/name?versionLabel=x", "k/name?versionStage=", "k/name?versionStage=a&versionStage=b",
		"k/name?versionStage=AWSCURRENT&versionId=" + id, "k/name?versionId=%zz",
	} {
		if _, err := src.Fetch(ctx, key); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Fetch(%q): err = %v, want ErrInvalid", key, err)
		}
		if r := src.FetchIfChanged(ctx, secrets.Request{Key: key}); !errors.Is(r.Err, secrets.ErrInvalid) {
			t.Errorf("FetchIfChanged(%q): err = %v, want ErrInvalid", key, r.Err)
		}
	}
	if n := srv.TotalCalls(); n != 0 {
		t.Fatalf("malformed keys made %d calls", n)
	}
}

func TestBinarySecret(t *testing.T) {
	srv, src := newSource(t)
	st, _ := newStore(t, src)
	ctx := ctxT(t)
	val := []byte{0xde, 0xad, 0x00, 0xbe, 0xef}
	srv.PutBinary("bin/key", val)
	got, err := st.Get(ctx, "awssm://bin/key")
	if err != nil || string(got.Bytes()) != string(val) {
		t.Fatalf("binary secret: %v", err)
	}
	srv.PutBinary("bin/json", []byte(`{"token":"t0k"}`))
	if f, err := st.Get(ctx, "awssm://bin/json#token"); err != nil || f.Reveal() != "t0k" {
		t.Fatalf("field of a binary JSON secret: %v", err)
	}
}

// TestDescribeDenied: a policy that grants GetSecretValue alone still
// works; once DescribeSecret is refused, polls use GetSecretValue.
func TestDescribeDenied(t *testing.T) {
	srv, src := newSource(t)
	ctx := ctxT(t)
	srv.Put("dd/key", "one")
	known, err := src.Fetch(ctx, "dd/key")
	if err != nil {
		t.Fatal(err)
	}
	// Everything denied: the error is the permission error, and the
	// source keeps trying DescribeSecret.
	removeAll := srv.AddFault(smtest.Fault{Kind: smtest.AccessDenied})
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "dd/key", Known: known})
	if !errors.Is(r.Err, secrets.ErrPermission) {
		t.Fatalf("all denied: %v", r.Err)
	}
	removeAll()
	defer srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.AccessDenied})()
	for round, wantDescribe := range []int{1, 0, 0} {
		srv.ResetCalls()
		r := src.FetchIfChanged(ctx, secrets.Request{Key: "dd/key", Known: known})
		if r.Err != nil || !r.Unchanged {
			t.Fatalf("round %d: %+v", round, r)
		}
		// By label: AWSCURRENT, AWSPREVIOUS and AWSPENDING (neither exists).
		if c := srv.Calls(); c["DescribeSecret"] != wantDescribe || c["GetSecretValue"] != 3 {
			t.Fatalf("round %d: calls = %v", round, c)
		}
	}
	srv.Put("dd/key", "two")
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "dd/key", Known: known})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "two" || r.Versions.Previous.Reveal() != "one" {
		t.Fatalf("after a rotation: %+v", r)
	}
}
