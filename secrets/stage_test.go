package secrets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

func TestRotationStepTerminal(t *testing.T) {
	for step, want := range map[secrets.RotationStep]bool{
		"": true, secrets.StepDone: true, secrets.StepRolledBack: true,
		secrets.StepStarted: false, secrets.StepStaged: false, secrets.StepSet: false,
		secrets.StepVerified: false, secrets.StepPromoted: false, secrets.StepOverlapped: false,
		secrets.StepRollingBack: false,
	} {
		if got := step.Terminal(); got != want {
			t.Errorf("%q.Terminal() = %v, want %v", step, got, want)
		}
	}
}

func TestRotationLocked(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := secrets.Rotation{Step: secrets.StepStaged, Expires: now.Add(time.Minute)}
	if !r.Locked(now) {
		t.Error("a staged record within its lease is not locked")
	}
	if r.Locked(now.Add(time.Minute)) {
		t.Error("a record whose lease ran out is still locked")
	}
	r.Step = secrets.StepDone
	if r.Locked(now) {
		t.Error("a finished record is locked")
	}
	if (secrets.Rotation{}).Locked(now) {
		t.Error("the zero record is locked")
	}
}

// TestRotationJSON: the record round-trips through JSON, the encoding
// sources store, without its Revision, which is the backend's and not part
// of the record.
func TestRotationJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := secrets.Rotation{
		ID: "r1", Step: secrets.StepPromoted, Owner: "host/1", Expires: at.Add(time.Minute),
		Started: at, Updated: at, From: "v1", Pending: "v2", Cause: "probe failed",
		Notes: map[string]string{"role": "app_b"}, Revision: "7",
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"7"`) || strings.Contains(strings.ToLower(string(b)), "revision") {
		t.Fatalf("the revision is encoded: %s", b)
	}
	var back secrets.Rotation
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := r
	want.Revision = ""
	if fmt.Sprint(back) != fmt.Sprint(want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, want)
	}
	if len(b) > secrets.MaxRotationSize {
		t.Fatalf("a typical record takes %d bytes", len(b))
	}
	empty, _ := json.Marshal(secrets.Rotation{})
	if string(empty) != `{"id":"","step":""}` {
		t.Fatalf("the zero record encodes as %s", empty)
	}
}

func TestRotationClone(t *testing.T) {
	r := secrets.Rotation{Notes: map[string]string{"role": "a"}}
	c := r.Clone()
	c.Notes["role"] = "b"
	if r.Notes["role"] != "a" {
		t.Fatal("Clone shares its Notes")
	}
	if (secrets.Rotation{}).Clone().Notes != nil {
		t.Fatal("Clone of a record without notes made some")
	}
}

func TestErrConflictIsItsOwnClass(t *testing.T) {
	err := fmt.Errorf("stage: %w", secrets.ErrConflict)
	if !errors.Is(err, secrets.ErrConflict) {
		t.Fatal("a wrapped ErrConflict is not found")
	}
	for _, other := range []error{secrets.ErrNotFound, secrets.ErrPermission, secrets.ErrTransient, secrets.ErrInvalid} {
		if errors.Is(err, other) || errors.Is(other, secrets.ErrConflict) {
			t.Fatalf("ErrConflict is confused with %v", other)
		}
	}
}

// ExampleRotation shows how an agent reads a rotation record: a record at a
// step that is not terminal is a lock while its lease runs, and a rotation
// to finish or undo once it has run out.
func ExampleRotation() {
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	rec := secrets.Rotation{
		ID: "r-42", Step: secrets.StepSet, Owner: "agent-a",
		Expires: now.Add(30 * time.Second), From: "v1", Pending: "v2",
	}
	fmt.Println("locked now:", rec.Locked(now))
	fmt.Println("locked in a minute:", rec.Locked(now.Add(time.Minute)))
	fmt.Println("finished:", rec.Step.Terminal())
	// Output:
	// locked now: true
	// locked in a minute: false
	// finished: false
}
