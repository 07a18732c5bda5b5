package sourcetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// testWrite checks the write side of rotation on a source that implements
// it (secrets.Stager, secrets.RotationRecorder, secrets.PreviousRemover):
// staging is conditional and idempotent, a pending version is reported by
// Fetch and never served as current, promotion moves current to previous,
// discarding leaves current alone, racing writers are arbitrated with
// exactly one winner, and no error holds a value. A source that implements
// none of them skips it.
func testWrite(t *testing.T, cfg Config) {
	src, _ := cfg.New(t)
	_, stager := src.(secrets.Stager)
	_, recorder := src.(secrets.RotationRecorder)
	_, remover := src.(secrets.PreviousRemover)
	if !stager && !recorder && !remover {
		t.Skip("the source does not write")
	}
	if cfg.NotWritable != nil {
		testWriteRefused(t, cfg)
		return
	}
	if stager {
		t.Run("Stage", func(t *testing.T) { testStage(t, cfg) })
		t.Run("StageConflicts", func(t *testing.T) { testStageConflicts(t, cfg) })
		t.Run("StageRace", func(t *testing.T) { testStageRace(t, cfg) })
		t.Run("Promote", func(t *testing.T) { testPromote(t, cfg) })
		t.Run("Discard", func(t *testing.T) { testDiscard(t, cfg) })
	}
	if remover {
		t.Run("RemovePrevious", func(t *testing.T) { testRemovePrevious(t, cfg) })
	}
	if recorder {
		t.Run("Record", func(t *testing.T) { testRecord(t, cfg) })
		t.Run("RecordRace", func(t *testing.T) { testRecordRace(t, cfg) })
	}
}

func newStager(t *testing.T, cfg Config, name, value string) (secrets.Stager, string, secrets.Versions) {
	t.Helper()
	src, h := cfg.New(t)
	st, ok := src.(secrets.Stager)
	if !ok {
		t.Fatal("the source is no longer a Stager")
	}
	set(t, cfg, h, name, value)
	key := h.Key(name)
	return st, key, fetch(t, src, key)
}

// uuidToken returns a random token in the form of the ClientRequestToken
// that AWS sends a rotation function (a version 4 UUID), and rotationToken
// one in the form of an Agent's rotation id. Neither is derived from the
// value staged: a source that names versions by the token must never carry
// a value into a version id or an error.
func uuidToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func rotationToken() string { return "rot-" + rand.Text() }

// stage stages value with token as the rotation's token.
func stage(t *testing.T, st secrets.Stager, key, current, token, value string) string {
	t.Helper()
	id, err := st.Stage(ctxT(t), key, secrets.StageRequest{Current: current, Value: []byte(value), Token: token})
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if id == "" {
		t.Fatal("Stage returned no version id")
	}
	if strings.Contains(id, value) {
		t.Fatal("the version id holds the value staged")
	}
	return id
}

func wantClass(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("%s: err = %v, want one wrapping %v", what, err, class)
	}
	noLeak(t, err)
}

func testStage(t *testing.T, cfg Config) {
	st, key, v0 := newStager(t, cfg, "stage", "old-value")
	tok := uuidToken()
	id := stage(t, st, key, v0.Current.Version(), tok, canary)
	v := fetch(t, st, key)
	if v.Current.Reveal() != "old-value" || v.Current.Version() != v0.Current.Version() {
		t.Fatal("staging changed the current version")
	}
	if v.Pending.Reveal() != canary || v.Pending.Version() != id {
		t.Fatalf("Fetch reports pending version %q (set: %v), want %q holding the staged value",
			v.Pending.Version(), !v.Pending.IsZero(), id)
	}
	// A retry: the same value with the same token is the same version.
	if again := stage(t, st, key, v0.Current.Version(), tok, canary); again != id {
		t.Fatalf("staging the same value with the same token again gave version %q, want %q", again, id)
	}
	// The same value from a caller that holds another token: the pending
	// version holds it already, so it is that version.
	if again := stage(t, st, key, v0.Current.Version(), rotationToken(), canary); again != id {
		t.Fatalf("staging the same value with another token gave version %q, want %q", again, id)
	}
	if v := fetch(t, st, key); v.Pending.Version() != id || v.Pending.Reveal() != canary || v.Current.Version() != v0.Current.Version() {
		t.Fatal("staging the same value again changed the versions")
	}
	_, err := st.Stage(ctxT(t), "missing-"+key, secrets.StageRequest{Current: "x", Value: []byte(canary)})
	if err == nil {
		t.Fatal("staging a key that does not exist succeeded")
	}
	noLeak(t, err)
	_, err = st.Stage(ctxT(t), key, secrets.StageRequest{Current: v0.Current.Version()})
	wantClass(t, "Stage of an empty value", err, secrets.ErrInvalid)
}

func testStageConflicts(t *testing.T, cfg Config) {
	st, key, v0 := newStager(t, cfg, "conflict", "old-value")
	_, err := st.Stage(ctxT(t), key, secrets.StageRequest{Current: v0.Current.Version() + "-other", Value: []byte(canary), Token: uuidToken()})
	wantClass(t, "Stage against a version that is not current", err, secrets.ErrConflict)
	if v := fetch(t, st, key); !v.Pending.IsZero() {
		t.Fatal("a Stage that lost its condition left a pending version")
	}
	id := stage(t, st, key, v0.Current.Version(), rotationToken(), "first-candidate")
	// Another rotation's value, with its own token, with or without the
	// form of AWS's tokens.
	for _, tok := range []string{"", uuidToken(), rotationToken()} {
		_, err = st.Stage(ctxT(t), key, secrets.StageRequest{Current: v0.Current.Version(), Value: []byte(canary), Token: tok})
		wantClass(t, "Stage while another version is pending", err, secrets.ErrConflict)
	}
	if v := fetch(t, st, key); v.Pending.Version() != id || v.Pending.Reveal() != "first-candidate" {
		t.Fatal("a refused Stage replaced the pending version")
	}
}

func testStageRace(t *testing.T, cfg Config) {
	st, key, v0 := newStager(t, cfg, "race", "old-value")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Stage(ctxT(t), key, secrets.StageRequest{Current: v0.Current.Version(), Value: fmt.Appendf(nil, "candidate-%d", i)})
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("two racing Stage calls both succeeded (%d and %d)", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, secrets.ErrConflict):
			t.Fatalf("a racing Stage failed with %v, want ErrConflict", err)
		}
	}
	if won < 0 {
		t.Fatal("no racing Stage succeeded")
	}
	if v := fetch(t, st, key); v.Pending.Reveal() != fmt.Sprintf("candidate-%d", won) {
		t.Fatal("the pending version is not the winner's")
	}
}

func testPromote(t *testing.T, cfg Config) {
	st, key, v0 := newStager(t, cfg, "promote", "old-value")
	cur := v0.Current.Version()
	id := stage(t, st, key, cur, uuidToken(), "new-value")
	err := st.Promote(ctxT(t), key, id, cur+"-other")
	wantClass(t, "Promote over a version that is not current", err, secrets.ErrConflict)
	if err := st.Promote(ctxT(t), key, id, cur); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	v := fetch(t, st, key)
	if v.Current.Reveal() != "new-value" || v.Current.Version() != id {
		t.Fatalf("after Promote the current version is %q, want %q with the staged value", v.Current.Version(), id)
	}
	if !v.Pending.IsZero() {
		t.Fatal("after Promote a version is still pending")
	}
	if cfg.KeepsPrevious && (v.Previous.Reveal() != "old-value" || v.Previous.Version() != cur) {
		t.Fatalf("after Promote the previous version is %q, want %q", v.Previous.Version(), cur)
	}
	if err := st.Promote(ctxT(t), key, id, cur); err != nil {
		t.Fatalf("Promote again (idempotent): %v", err)
	}
	// A new rotation starts from the promoted version.
	id2 := stage(t, st, key, id, rotationToken(), "newer-value")
	if err := st.Promote(ctxT(t), key, id2, id); err != nil {
		t.Fatalf("second Promote: %v", err)
	}
	if err := st.Promote(ctxT(t), key, id, cur); !errors.Is(err, secrets.ErrConflict) && !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Promote of a version replaced since: err = %v, want ErrConflict or ErrNotFound", err)
	}
	if v := fetch(t, st, key); v.Current.Reveal() != "newer-value" {
		t.Fatal("a stale Promote changed the current version")
	}
}

func testDiscard(t *testing.T, cfg Config) {
	st, key, v0 := newStager(t, cfg, "discard", "old-value")
	cur := v0.Current.Version()
	if err := st.Discard(ctxT(t), key, "nothing-pending"); err != nil {
		t.Fatalf("Discard with nothing pending: %v", err)
	}
	id := stage(t, st, key, cur, rotationToken(), canary)
	wantClass(t, "Discard of another version", st.Discard(ctxT(t), key, id+"-other"), secrets.ErrConflict)
	wantClass(t, "Discard of the current version", st.Discard(ctxT(t), key, cur), secrets.ErrConflict)
	if err := st.Discard(ctxT(t), key, id); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	v := fetch(t, st, key)
	if !v.Pending.IsZero() || v.Current.Version() != cur || v.Current.Reveal() != "old-value" {
		t.Fatal("Discard did not leave exactly the current version")
	}
	if err := st.Discard(ctxT(t), key, id); err != nil {
		t.Fatalf("Discard again (idempotent): %v", err)
	}
	// The key can be staged again.
	stage(t, st, key, cur, uuidToken(), "another-candidate")
}

func testRemovePrevious(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	rm := src.(secrets.PreviousRemover)
	set(t, cfg, h, "removeprev", "first")
	fetch(t, src, h.Key("removeprev"))
	set(t, cfg, h, "removeprev", "second")
	v := fetch(t, src, h.Key("removeprev"))
	if v.Previous.IsZero() {
		if err := rm.RemovePrevious(ctxT(t), h.Key("removeprev"), "none"); err != nil {
			t.Fatalf("RemovePrevious with no previous version: %v", err)
		}
		return
	}
	key, prev := h.Key("removeprev"), v.Previous.Version()
	wantClass(t, "RemovePrevious of another version", rm.RemovePrevious(ctxT(t), key, prev+"-other"), secrets.ErrConflict)
	if err := rm.RemovePrevious(ctxT(t), key, prev); err != nil {
		t.Fatalf("RemovePrevious: %v", err)
	}
	v = fetch(t, src, key)
	if !v.Previous.IsZero() || v.Current.Reveal() != "second" {
		t.Fatal("RemovePrevious did not leave exactly the current version")
	}
	if err := rm.RemovePrevious(ctxT(t), key, prev); err != nil {
		t.Fatalf("RemovePrevious again (idempotent): %v", err)
	}
}

func newRecorder(t *testing.T, cfg Config, name string) (secrets.RotationRecorder, string) {
	t.Helper()
	src, h := cfg.New(t)
	set(t, cfg, h, name, "value")
	return src.(secrets.RotationRecorder), h.Key(name)
}

func testRecord(t *testing.T, cfg Config) {
	rr, key := newRecorder(t, cfg, "record")
	r0, err := rr.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatalf("LoadRotation of a key never rotated: %v", err)
	}
	if r0.Revision != "" || r0.Step != "" {
		t.Fatalf("LoadRotation of a key never rotated = %+v, want the zero record", r0)
	}
	rec := secrets.Rotation{ID: "rot-1", Step: secrets.StepStarted, Owner: "suite", From: "v1",
		Notes: map[string]string{"role": "app_a"}}
	r1, err := rr.SaveRotation(ctxT(t), key, rec)
	if err != nil {
		t.Fatalf("SaveRotation (create): %v", err)
	}
	if r1.Revision == "" {
		t.Fatal("SaveRotation returned no revision")
	}
	_, err = rr.SaveRotation(ctxT(t), key, rec)
	wantClass(t, "SaveRotation creating a record that exists", err, secrets.ErrConflict)
	got, err := rr.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatalf("LoadRotation: %v", err)
	}
	if got.Revision != r1.Revision || got.ID != "rot-1" || got.Step != secrets.StepStarted || got.Notes["role"] != "app_a" {
		t.Fatalf("LoadRotation = %+v, want the record saved (revision %q)", got, r1.Revision)
	}
	got.Step = secrets.StepStaged
	r2, err := rr.SaveRotation(ctxT(t), key, got)
	if err != nil {
		t.Fatalf("SaveRotation (update): %v", err)
	}
	if r2.Revision == r1.Revision {
		t.Fatal("an update kept the revision")
	}
	stale := r1
	stale.Step = secrets.StepRolledBack
	_, err = rr.SaveRotation(ctxT(t), key, stale)
	wantClass(t, "SaveRotation on a stale revision", err, secrets.ErrConflict)
	// Saving an unchanged record still moves the revision: a lease renewal.
	r3, err := rr.SaveRotation(ctxT(t), key, r2)
	if err != nil || r3.Revision == r2.Revision {
		t.Fatalf("saving an unchanged record: revision %q after %q, err %v", r3.Revision, r2.Revision, err)
	}
	if got, _ := rr.LoadRotation(ctxT(t), key); got.Step != secrets.StepStaged || got.Revision != r3.Revision {
		t.Fatalf("after the stale save the record is %+v", got)
	}
}

func testRecordRace(t *testing.T, cfg Config) {
	rr, key := newRecorder(t, cfg, "recordrace")
	for round := range 2 {
		base, err := rr.LoadRotation(ctxT(t), key)
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := base.Clone()
				rec.ID, rec.Step, rec.Owner = fmt.Sprintf("rot-%d-%d", round, i), secrets.StepStarted, fmt.Sprintf("agent-%d", i)
				_, errs[i] = rr.SaveRotation(ctxT(t), key, rec)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: two racing saves on one revision both succeeded (%d and %d)", round, won, i)
			case err == nil:
				won = i
			case !errors.Is(err, secrets.ErrConflict):
				t.Fatalf("round %d: a racing save failed with %v, want ErrConflict", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no racing save succeeded", round)
		}
		if got, _ := rr.LoadRotation(ctxT(t), key); got.Owner != fmt.Sprintf("agent-%d", won) {
			t.Fatalf("round %d: the record is %q's, want the winner agent-%d's", round, got.Owner, won)
		}
	}
}
