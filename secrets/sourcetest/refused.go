package sourcetest

import (
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// testWriteRefused checks a source whose keys, in this configuration,
// cannot be written (Config.NotWritable): every write fails with an error
// of that class holding no value, and the key reads as before.
func testWriteRefused(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "refused", "first")
	set(t, cfg, h, "refused", "second")
	key := h.Key("refused")
	v0 := fetch(t, src, key)
	check := func(what string, err error) {
		t.Helper()
		wantClass(t, what, err, cfg.NotWritable)
	}
	if st, ok := src.(secrets.Stager); ok {
		_, err := st.Stage(ctxT(t), key, secrets.StageRequest{Current: v0.Current.Version(), Value: []byte(canary), Token: "tok"})
		check("Stage", err)
		check("Promote", st.Promote(ctxT(t), key, "pending", v0.Current.Version()))
	}
	if rm, ok := src.(secrets.PreviousRemover); ok && !v0.Previous.IsZero() {
		check("RemovePrevious", rm.RemovePrevious(ctxT(t), key, v0.Previous.Version()))
	}
	if rr, ok := src.(secrets.RotationRecorder); ok {
		_, err := rr.SaveRotation(ctxT(t), key, secrets.Rotation{ID: "rot-1", Step: secrets.StepStarted, Owner: "suite"})
		check("SaveRotation", err)
		if rec, err := rr.LoadRotation(ctxT(t), key); err != nil || rec.Revision != "" {
			t.Fatalf("after a refused save, LoadRotation = %+v, %v; want the zero record", rec, err)
		}
	}
	v := fetch(t, src, key)
	if v.Current.Version() != v0.Current.Version() || v.Previous.Version() != v0.Previous.Version() || !v.Pending.IsZero() {
		t.Fatal("a refused write changed the key's versions")
	}
}
