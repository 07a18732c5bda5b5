package vaultsource_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// canary is a value the tests stage and then look for in every error.
const canary = "canary-0b7c-must-never-leak"

// writePolicy grants what a rotation agent needs on a KV v2 mount under
// prefix, as the package documentation says.
func writePolicy(mount, prefix string) string {
	return fmt.Sprintf(`
path "%[1]s/data/%[2]s*"     { capabilities = ["create", "read", "update"] }
path "%[1]s/metadata/%[2]s*" { capabilities = ["read", "patch"] }
path "%[1]s/delete/%[2]s*"   { capabilities = ["update"] }
`, mount, prefix)
}

// tokenWith creates a token of the root client that carries policies.
func tokenWith(t *testing.T, root *api.Client, policies ...string) string {
	t.Helper()
	sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: false})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// marks returns the rotor marks in a key's custom metadata.
func marks(t *testing.T, root *api.Client, path string) map[string]string {
	t.Helper()
	md, err := root.KVv2("secret").GetMetadata(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range md.CustomMetadata {
		if strings.HasPrefix(k, "rotor-") {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func mustFetch(t *testing.T, src secrets.Source, key string) secrets.Versions {
	t.Helper()
	v, err := src.Fetch(testCtx(t), key)
	if err != nil {
		t.Fatalf("Fetch(%s): %v", key, err)
	}
	return v
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), canary) {
		t.Fatalf("an error holds the staged value: %v", err)
	}
}

// TestStageAsOtherToolsSeeIt walks one rotation and checks, at each step,
// what the source reports and what the vault command (the api client's
// KVv2 reads) shows: the documentation's table.
func TestStageAsOtherToolsSeeIt(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	kv := root.KVv2("secret")
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	const key = "secret/tools/db?field=password"
	put(t, root, "secret", "tools/db", map[string]any{"user": "app", "password": "one"})
	put(t, root, "secret", "tools/db", map[string]any{"user": "app", "password": "two"})
	if m := marks(t, root, "tools/db"); len(m) != 0 {
		t.Fatalf("a key never rotated has marks %v", m)
	}
	v0 := mustFetch(t, src, key)

	id, err := src.Stage(ctx, key, secrets.StageRequest{Current: "2", Value: []byte(canary)})
	if err != nil || id != "3" {
		t.Fatalf("Stage = %q, %v; want version 3", id, err)
	}
	got := mustFetch(t, src, key)
	if got.Current.Version() != "2" || got.Current.Reveal() != "two" || got.Previous.Version() != "1" ||
		got.Pending.Version() != "3" || got.Pending.Reveal() != canary {
		t.Fatalf("staged: current %s previous %s pending %s", got.Current.Version(), got.Previous.Version(), got.Pending.Version())
	}
	// The vault command reads the latest version, the pending one, and
	// shows the marks that say it is pending.
	latest, err := kv.Get(ctx, "tools/db")
	if err != nil {
		t.Fatal(err)
	}
	if latest.VersionMetadata.Version != 3 || latest.Data["password"] != canary || latest.Data["user"] != "app" ||
		fmt.Sprint(latest.CustomMetadata[vault.MarkCurrent]) != "2" || fmt.Sprint(latest.CustomMetadata[vault.MarkPending]) != "3" {
		t.Fatalf("vault kv get during the rotation: version %d, custom metadata %v", latest.VersionMetadata.Version, latest.CustomMetadata)
	}
	// FetchIfChanged from what a Store held before: changed, with the
	// current and previous versions taken from what it held.
	r := src.FetchIfChanged(ctx, secrets.Request{Key: key, Known: v0})
	if r.Err != nil || r.Unchanged || r.Versions.Pending.Version() != "3" || r.Versions.Current.Version() != "2" {
		t.Fatalf("FetchIfChanged after Stage: %+v", r)
	}
	if r := src.FetchIfChanged(ctx, secrets.Request{Key: key, Known: got}); r.Err != nil || !r.Unchanged {
		t.Fatalf("FetchIfChanged with the staged versions known: %+v", r)
	}

	if err := src.Promote(ctx, key, "3", "2"); err != nil {
		t.Fatal(err)
	}
	if m := marks(t, root, "tools/db"); len(m) != 1 || m[vault.MarkCurrent] != "3" {
		t.Fatalf("marks after Promote: %v", m)
	}
	got = mustFetch(t, src, key)
	if got.Current.Version() != "3" || got.Previous.Version() != "2" || !got.Pending.IsZero() {
		t.Fatalf("promoted: current %s previous %s pending %s", got.Current.Version(), got.Previous.Version(), got.Pending.Version())
	}

	// A plain write afterwards is current, as if no rotation had been.
	put(t, root, "secret", "tools/db", map[string]any{"user": "app", "password": "four"})
	got = mustFetch(t, src, key)
	if got.Current.Version() != "4" || got.Current.Reveal() != "four" || got.Previous.Version() != "3" || !got.Pending.IsZero() {
		t.Fatalf("plain write after a rotation: current %s previous %s", got.Current.Version(), got.Previous.Version())
	}
}

// TestStageDiscard: a discarded version is soft-deleted and never served;
// the key keeps its current version, and the next write, the agent's or
// anyone's, goes on from there.
func TestStageDiscard(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	const key = "secret/discard/db"
	put(t, root, "secret", "discard/db", map[string]any{"password": "one"})

	id, err := src.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{"password": "` + canary + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Discard(ctx, key, id); err != nil {
		t.Fatal(err)
	}
	// vault kv get reports the latest version, the discarded one, deleted.
	if sec, err := root.KVv2("secret").Get(ctx, "discard/db"); err != nil || sec.Data != nil || sec.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("vault kv get after a Discard: %v", err)
	}
	got := mustFetch(t, src, key)
	if got.Current.Version() != "1" || !got.Pending.IsZero() || !got.Previous.IsZero() {
		t.Fatalf("after Discard: current %s pending %s previous %s", got.Current.Version(), got.Pending.Version(), got.Previous.Version())
	}
	// Staged again, and promoted: version 3, over 1, with 2 skipped.
	id, err = src.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{"password":"three"}`)})
	if err != nil || id != "3" {
		t.Fatalf("Stage after a Discard = %q, %v", id, err)
	}
	if err := src.Promote(ctx, key, id, "1"); err != nil {
		t.Fatal(err)
	}
	got = mustFetch(t, src, key)
	if got.Current.Version() != "3" || got.Previous.Version() != "1" {
		t.Fatalf("after Promote: current %s previous %s", got.Current.Version(), got.Previous.Version())
	}
	// Discarding the promoted version is refused, and changes nothing.
	err = src.Discard(ctx, key, id)
	if !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("Discard of the promoted version: %v, want ErrConflict", err)
	}
	if got := mustFetch(t, src, key); got.Current.Version() != "3" {
		t.Fatal("a refused Discard changed the current version")
	}

	// A plain write after a discard is current.
	src2 := newSource(t, c)
	id, err = src2.Stage(ctx, key, secrets.StageRequest{Current: "3", Value: []byte(`{"password":"four"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src2.Discard(ctx, key, id); err != nil {
		t.Fatal(err)
	}
	put(t, root, "secret", "discard/db", map[string]any{"password": "five"})
	if got := mustFetch(t, src, key); got.Current.Version() != "5" || got.Previous.Version() != "3" {
		t.Fatalf("plain write after a discard: current %s previous %s", got.Current.Version(), got.Previous.Version())
	}
}

// TestStageOutsideWrite: a plain write while a version is pending voids the
// rotation's marks: the write is current, as in plain KV v2, the staged
// version is neither pending nor previous, and the rotation's Promote is
// refused.
func TestStageOutsideWrite(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	const key = "secret/outside/db"
	put(t, root, "secret", "outside/db", map[string]any{"password": "one"})
	id, err := src.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{"password":"staged"}`)})
	if err != nil {
		t.Fatal(err)
	}
	put(t, root, "secret", "outside/db", map[string]any{"password": "by hand"})
	got := mustFetch(t, src, key)
	if got.Current.Version() != "3" || !got.Pending.IsZero() || got.Previous.Version() != "1" {
		t.Fatalf("after a plain write: current %s pending %s previous %s", got.Current.Version(), got.Pending.Version(), got.Previous.Version())
	}
	if err := src.Promote(ctx, key, id, "1"); !errors.Is(err, secrets.ErrNotFound) && !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("Promote after a plain write: %v", err)
	}
	if err := src.Discard(ctx, key, id); err != nil {
		t.Fatalf("Discard of a version no longer pending: %v", err)
	}
	if got := mustFetch(t, src, key); got.Current.Version() != "3" {
		t.Fatal("the plain write is no longer current")
	}
}

// TestStageRaceAcrossSources: agents on two machines, each its own Source
// and client, stage over the same current version at once: exactly one
// wins, every time.
func TestStageRaceAcrossSources(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	ca, _ := newClient(t, v, v.RootToken)
	cb, _ := newClient(t, v, v.RootToken)
	srcs := []*vault.Source{newSource(t, ca), newSource(t, cb)}
	const key = "secret/race/db?field=password"
	put(t, root, "secret", "race/db", map[string]any{"password": "start"})
	for round := range 5 {
		cur := mustFetch(t, srcs[0], key).Current.Version()
		var wg sync.WaitGroup
		ids, errs := make([]string, 2), make([]error, 2)
		for i, s := range srcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = s.Stage(ctx, key, secrets.StageRequest{Current: cur, Value: fmt.Appendf(nil, "round-%d-agent-%d", round, i)})
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: both stagers won", round)
			case err == nil:
				won = i
			case !errors.Is(err, secrets.ErrConflict):
				t.Fatalf("round %d: the loser failed with %v, want ErrConflict", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no stager won", round)
		}
		got := mustFetch(t, srcs[1-won], key)
		if got.Current.Version() != cur || got.Pending.Version() != ids[won] || got.Pending.Reveal() != fmt.Sprintf("round-%d-agent-%d", round, won) {
			t.Fatalf("round %d: current %s pending %s; want %s over %s, the winner's", round,
				got.Current.Version(), got.Pending.Version(), ids[won], cur)
		}
		if err := srcs[1-won].Promote(ctx, key, ids[won], cur); err != nil {
			t.Fatalf("round %d: Promote by the other agent: %v", round, err)
		}
	}
}

// TestResumeAfterCrash: an agent records a rotation, stages a value and
// stops before promoting (its process is gone). Another, with its own
// client, reads the record, finds the staged version pending, promotes it
// and closes the record.
func TestResumeAfterCrash(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	put(t, root, "secret", "resume/db", map[string]any{"password": "old"})
	const key = "secret/resume/db"

	ca, _ := newClient(t, v, v.RootToken)
	a, err := vault.New(ca)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := a.SaveRotation(ctx, key, secrets.Rotation{ID: "rot-1", Step: secrets.StepStarted, Owner: "agent-a", From: "1"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{"password":"new"}`), Token: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	rec.Step, rec.Pending = secrets.StepStaged, id
	if _, err := a.SaveRotation(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // the crash
		t.Fatal(err)
	}
	if _, err := a.SaveRotation(ctx, key, rec); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("a closed source saved: %v", err)
	}

	cb, _ := newClient(t, v, v.RootToken)
	b := newSource(t, cb)
	got, err := b.LoadRotation(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "rot-1" || got.Step != secrets.StepStaged || got.Pending != id || got.From != "1" || got.Owner != "agent-a" {
		t.Fatalf("the resuming agent reads %+v", got)
	}
	vs := mustFetch(t, b, key)
	if vs.Current.Version() != got.From || vs.Pending.Version() != got.Pending {
		t.Fatalf("the store holds current %s pending %s, the record says %s over %s",
			vs.Current.Version(), vs.Pending.Version(), got.Pending, got.From)
	}
	// The resuming agent takes the record over (check-and-set on the
	// revision it read), promotes, and finishes.
	got.Owner = "agent-b"
	got, err = b.SaveRotation(ctx, key, got)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Promote(ctx, key, got.Pending, got.From); err != nil {
		t.Fatal(err)
	}
	got.Step = secrets.StepDone
	if _, err := b.SaveRotation(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	vs = mustFetch(t, b, key)
	if vs.Current.Reveal() != `{"password":"new"}` || vs.Previous.Version() != "1" || !vs.Pending.IsZero() {
		t.Fatalf("after the resumed promotion: current %s previous %s", vs.Current.Version(), vs.Previous.Version())
	}
	// The record is a KV v2 secret that the vault command reads.
	recSec, err := root.KVv2("secret").Get(ctx, "resume/db"+vault.RecordSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if recSec.Data["step"] != "done" || recSec.Data["owner"] != "agent-b" || recSec.Data["pending"] != id {
		t.Fatalf("vault kv get of the record: %v", recSec.Data)
	}
}

// TestWriteDenied: a token whose policy only reads (the consumers' policy)
// is refused every write with ErrPermission, and nothing changes: no mark,
// no version, no record. A token that may mark but not write data leaves no
// mark behind either.
func TestWriteDenied(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	put(t, root, "secret", "denied/db", map[string]any{"password": "one"})
	put(t, root, "secret", "denied/db", map[string]any{"password": "two"})
	const key = "secret/denied/db"
	v.WritePolicy(t, "reader", readPolicy("secret", "denied/"))
	v.WritePolicy(t, "marker", readPolicy("secret", "denied/")+`path "secret/metadata/denied/*" { capabilities = ["read", "patch"] }`)

	// check tries every write; mayPatch says that the token may patch the
	// metadata, which is all RemovePrevious does.
	check := func(t *testing.T, src *vault.Source, mayPatch bool) {
		t.Helper()
		before := mustFetch(t, src, key)
		_, err := src.Stage(ctx, key, secrets.StageRequest{Current: "2", Value: []byte(`{"password":"` + canary + `"}`)})
		if !errors.Is(err, secrets.ErrPermission) {
			t.Fatalf("Stage: %v, want ErrPermission", err)
		}
		noLeak(t, err)
		if !mayPatch {
			if err := src.RemovePrevious(ctx, key, "1"); !errors.Is(err, secrets.ErrPermission) {
				t.Fatalf("RemovePrevious: %v, want ErrPermission", err)
			}
		}
		if _, err := src.SaveRotation(ctx, key, secrets.Rotation{ID: "r", Step: secrets.StepStarted}); !errors.Is(err, secrets.ErrPermission) {
			t.Fatalf("SaveRotation: %v, want ErrPermission", err)
		}
		if rec, err := src.LoadRotation(ctx, key); err != nil || rec.Revision != "" {
			t.Fatalf("LoadRotation after a refused save: %+v, %v", rec, err)
		}
		after := mustFetch(t, src, key)
		if after.Current.Version() != before.Current.Version() || after.Previous.Version() != before.Previous.Version() || !after.Pending.IsZero() {
			t.Fatal("a refused write changed the versions")
		}
		if m := marks(t, root, "denied/db"); len(m) != 0 {
			t.Fatalf("a refused write left marks %v", m)
		}
		md, err := root.KVv2("secret").GetMetadata(ctx, "denied/db")
		if err != nil || md.CurrentVersion != 2 {
			t.Fatalf("a refused write wrote a version: %v", err)
		}
	}
	t.Run("reader", func(t *testing.T) {
		c, _ := newClient(t, v, tokenWith(t, root, "reader"))
		check(t, newSource(t, c), false)
	})
	t.Run("marker", func(t *testing.T) {
		c, _ := newClient(t, v, tokenWith(t, root, "marker"))
		check(t, newSource(t, c), true)
	})
}

// TestPromoteIdempotent: a Promote whose answer was lost is called again,
// by the same agent or another one, and succeeds without a change; a stale
// one, over a version no longer current, is refused.
func TestPromoteIdempotent(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	const key = "secret/idem/db"
	put(t, root, "secret", "idem/db", map[string]any{"password": "one"})
	id, err := src.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{"password":"two"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := src.Stage(ctx, key, secrets.StageRequest{Current: "1", Value: []byte(`{ "password" : "two" }`)}); err != nil || again != id {
		t.Fatalf("Stage of the same value again = %q, %v; want %q", again, err, id)
	}
	for i := range 3 {
		if err := src.Promote(ctx, key, id, "1"); err != nil {
			t.Fatalf("Promote %d: %v", i, err)
		}
	}
	c2, _ := newClient(t, v, v.RootToken)
	if err := newSource(t, c2).Promote(ctx, key, id, "1"); err != nil {
		t.Fatalf("Promote by another agent: %v", err)
	}
	md, err := root.KVv2("secret").GetMetadata(ctx, "idem/db")
	if err != nil || md.CurrentVersion != 2 {
		t.Fatalf("repeated promotions wrote versions: %v", err)
	}
	got := mustFetch(t, src, key)
	if got.Current.Version() != id || got.Previous.Version() != "1" {
		t.Fatalf("current %s previous %s", got.Current.Version(), got.Previous.Version())
	}
	// The previous version retired: no longer served, kept in Vault.
	if err := src.RemovePrevious(ctx, key, "1"); err != nil {
		t.Fatal(err)
	}
	if err := src.RemovePrevious(ctx, key, "1"); err != nil {
		t.Fatalf("RemovePrevious again: %v", err)
	}
	if got := mustFetch(t, src, key); !got.Previous.IsZero() {
		t.Fatal("a retired version is still previous")
	}
	if _, err := root.KVv2("secret").GetVersion(ctx, "idem/db", 1); err != nil {
		t.Fatalf("the retired version is gone from Vault: %v", err)
	}
	// With no previous version kept, a repeated Promote still succeeds.
	if err := src.Promote(ctx, key, id, "1"); err != nil {
		t.Fatalf("Promote after the previous version was retired: %v", err)
	}
}

// TestStageKVv1: KV version 1 keeps no versions; every write is refused with
// a typed error and changes nothing, and a key has no rotation record.
func TestStageKVv1(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "legacy", 1)
	root := v.Client(t)
	ctx := testCtx(t)
	if err := root.KVv1("legacy").Put(ctx, "db", map[string]any{"password": "one"}); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	cur := mustFetch(t, src, "legacy/db").Current.Version()
	_, err := src.Stage(ctx, "legacy/db", secrets.StageRequest{Current: cur, Value: []byte(`{"password":"` + canary + `"}`)})
	if !errors.Is(err, secrets.ErrInvalid) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Stage on KV v1: %v", err)
	}
	noLeak(t, err)
	for what, err := range map[string]error{
		"Promote":        src.Promote(ctx, "legacy/db", "x", cur),
		"Discard":        src.Discard(ctx, "legacy/db", "x"),
		"RemovePrevious": src.RemovePrevious(ctx, "legacy/db", "x"),
	} {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s on KV v1: %v", what, err)
		}
	}
	if _, err := src.SaveRotation(ctx, "legacy/db", secrets.Rotation{ID: "r"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SaveRotation on KV v1: %v", err)
	}
	if rec, err := src.LoadRotation(ctx, "legacy/db"); err != nil || rec.Revision != "" {
		t.Fatalf("LoadRotation on KV v1: %+v, %v", rec, err)
	}
	if got := mustFetch(t, src, "legacy/db"); got.Current.Version() != cur {
		t.Fatal("the value changed")
	}
}

// TestStageStore: a Store over the source sees a staged version as
// pending on its next refresh, keeps serving the current one, and serves
// the new one once it is promoted.
func TestStageStore(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	st := newStore(t, src)
	const ref = "vault://secret/store/db#password"
	put(t, root, "secret", "store/db", map[string]any{"password": "one"})
	if s, err := st.Get(ctx, ref); err != nil || s.Reveal() != "one" {
		t.Fatalf("Get: %v", err)
	}
	id, err := src.Stage(ctx, "secret/store/db", secrets.StageRequest{Current: "1", Value: []byte(`{"password":"two"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Refresh(ctx, ref); err != nil {
		t.Fatal(err)
	}
	ks, _ := st.Status(ref)
	if ks.Version != "1" || ks.PendingVersion != id {
		t.Fatalf("status after Stage: version %q pending %q", ks.Version, ks.PendingVersion)
	}
	if s, _ := st.Get(ctx, ref); s.Reveal() != "one" {
		t.Fatal("the Store serves the pending version")
	}
	if err := src.Promote(ctx, "secret/store/db", id, "1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Refresh(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Get(ctx, ref); s.Reveal() != "two" || s.Version() != strconv.Itoa(2) {
		t.Fatalf("after Promote the Store serves version %s", s.Version())
	}
}
