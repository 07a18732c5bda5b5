package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// Tokens of the rotations in these tests, as Secrets Manager passes them to
// a rotation function (ClientRequestToken, which becomes the VersionId).
const (
	token1 = "11111111-1111-4111-8111-111111111111"
	token2 = "22222222-2222-4222-8222-222222222222"
)

// stage does a rotation's createSecret step: value as a new version
// labelled AWSPENDING only.
func stage(t *testing.T, c *secretsmanager.Client, name, token, value string) {
	t.Helper()
	if _, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(value), VersionStages: []string{"AWSPENDING"},
	}); err != nil {
		t.Fatal(err)
	}
}

// moveStage moves label to version to (from the version from), or removes it
// from from when to is "".
func moveStage(t *testing.T, c *secretsmanager.Client, name, label, from, to string) {
	t.Helper()
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(label)}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if _, err := c.UpdateSecretVersionStage(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
}

// readPaths reads key through every path of the source and returns what
// each returned: Fetch, FetchIfChanged with known, FetchMany with known
// (batched with another key) and FetchMany without (a Reload).
func readPaths(t *testing.T, srv *smtest.Server, src *awssm.Source, key string, known secrets.Versions) map[string]secrets.Versions {
	t.Helper()
	ctx := ctxT(t)
	other := key + "-other"
	srv.Put(other, "static")
	otherKnown, err := src.Fetch(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]secrets.Versions{}
	v, err := src.Fetch(ctx, key)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	out["Fetch"] = v
	r := src.FetchIfChanged(ctx, secrets.Request{Key: key, Known: known})
	if r.Err != nil {
		t.Fatalf("FetchIfChanged: %v", r.Err)
	}
	if r.Unchanged {
		r.Versions = known
	}
	out["FetchIfChanged"] = r.Versions
	res := src.FetchMany(ctx, []secrets.Request{{Key: key, Known: known}, {Key: other, Known: otherKnown}})
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("FetchMany: %v, %v", res[0].Err, res[1].Err)
	}
	if res[0].Unchanged {
		res[0].Versions = known
	}
	out["FetchMany"] = res[0].Versions
	res = src.FetchMany(ctx, []secrets.Request{{Key: key}, {Key: other}})
	if res[0].Err != nil {
		t.Fatalf("FetchMany forced: %v", res[0].Err)
	}
	out["FetchMany forced"] = res[0].Versions
	return out
}

// TestPendingLifecycle follows a rotation's pending version through every
// read path: staged, it is Pending; discarded, it is gone; staged again and
// made current (AWSPENDING stays on it), it is current and Pending is none.
// The polls know the versions of the step before, as a Store's do; a batch
// round, which sees AWSCURRENT only, does not see a pending version being
// staged.
func TestPendingLifecycle(t *testing.T) {
	for _, batched := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batched), func(t *testing.T) {
			srv, src := newSource(t, awssm.WithBatch(batched))
			c := srv.Client()
			const name = "life/db"
			v1 := srv.Put(name, "one")
			v2 := srv.Put(name, "two")
			known, err := src.Fetch(ctxT(t), name)
			if err != nil {
				t.Fatal(err)
			}
			check := func(step, cur, prev, pend string) secrets.Versions {
				t.Helper()
				var last secrets.Versions
				for path, v := range readPaths(t, srv, src, name, known) {
					want := pend
					if path == "FetchMany" && batched && known.Pending.IsZero() && cur == known.Current.Version() {
						// A batch sees AWSCURRENT only: a pending
						// version staged is seen by a full read.
						want = ""
					}
					if v.Current.Version() != cur || v.Previous.Version() != prev || v.Pending.Version() != want {
						t.Fatalf("%s, %s: current %q previous %q pending %q, want %q %q %q", step, path,
							v.Current.Version(), v.Previous.Version(), v.Pending.Version(), cur, prev, want)
					}
					if !v.Pending.IsZero() && v.Pending.Reveal() != "three" {
						t.Fatalf("%s, %s: the pending version holds another value", step, path)
					}
					last = v
				}
				return last
			}
			check("before", v2, v1, "")

			stage(t, c, name, token1, "three")
			known = check("staged", v2, v1, token1)

			moveStage(t, c, name, "AWSPENDING", token1, "") // discarded
			known = check("discarded", v2, v1, "")

			stage(t, c, name, token2, "three")
			known = check("staged again", v2, v1, token2)

			moveStage(t, c, name, "AWSCURRENT", v2, token2) // finished
			check("finished", token2, v2, "")
		})
	}
}

// TestPendingUnchanged: a poll answers Unchanged only when the holders of
// AWSCURRENT, AWSPREVIOUS and AWSPENDING are all those known, and reads
// only the versions not known.
func TestPendingUnchanged(t *testing.T) {
	srv, src := newSource(t)
	c := srv.Client()
	ctx := ctxT(t)
	const name = "unch/db"
	srv.Put(name, "one")
	srv.Put(name, "two")
	plain, err := src.Fetch(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	stage(t, c, name, token1, "three")
	staged, err := src.Fetch(ctx, name)
	if err != nil || staged.Pending.Version() != token1 {
		t.Fatalf("staged: pending %q, err %v", staged.Pending.Version(), err)
	}
	poll := func(known secrets.Versions) (secrets.Result, map[string]int) {
		t.Helper()
		srv.ResetCalls()
		r := src.FetchIfChanged(ctx, secrets.Request{Key: name, Known: known})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r, srv.Calls()
	}
	// All three the same: unchanged, one call.
	if r, c := poll(staged); !r.Unchanged || len(c) != 1 || c["DescribeSecret"] != 1 {
		t.Fatalf("all known: %+v %v", r, c)
	}
	// Pending not known: changed, the pending version read alone.
	if r, c := poll(plain); r.Unchanged || r.Versions.Pending.Version() != token1 || c["GetSecretValue"] != 1 {
		t.Fatalf("pending not known: %+v %v", r, c)
	}
	// Another pending version staged (a new rotation's token moves
	// AWSPENDING): changed, the new one read alone.
	stage(t, c, name, token2, "four")
	r, calls := poll(staged)
	if r.Unchanged || r.Versions.Pending.Version() != token2 || r.Versions.Pending.Reveal() != "four" || calls["GetSecretValue"] != 1 {
		t.Fatalf("pending replaced: %+v %v", r, calls)
	}
	// Pending known but discarded: changed, Pending zero, nothing read.
	moveStage(t, c, name, "AWSPENDING", token2, "")
	r, calls = poll(staged)
	if r.Unchanged || !r.Versions.Pending.IsZero() || r.Versions.Current.Version() != staged.Current.Version() || len(calls) != 1 {
		t.Fatalf("pending discarded: %+v %v", r, calls)
	}
	if r, c := poll(plain); !r.Unchanged || len(c) != 1 {
		t.Fatalf("back to no pending: %+v %v", r, c)
	}
}

// TestPendingInBatchRound: a round over secrets of which some are in
// rotation costs a batch call per twenty of the others and one
// DescribeSecret for each secret in rotation, and sees a discard.
func TestPendingInBatchRound(t *testing.T) {
	srv, src := newSource(t)
	c := srv.Client()
	ctx := ctxT(t)
	reqs := seed(t, srv, src, "round", 42)
	for _, i := range []int{5, 17} {
		stage(t, c, reqs[i].Key, token1, "three")
	}
	// The batch sees AWSCURRENT only: a pending version staged is not seen
	// by the round, which costs what it did.
	srv.ResetCalls()
	for i, r := range src.FetchMany(ctx, reqs) {
		if r.Err != nil || !r.Unchanged {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if calls := srv.Calls(); calls["BatchGetSecretValue"] != 3 || srv.TotalCalls() != 3 {
		t.Fatalf("round with pending versions not known: %v", calls)
	}
	// A Reload sees them.
	for i, r := range src.FetchMany(ctx, []secrets.Request{{Key: reqs[5].Key}, {Key: reqs[17].Key}, {Key: reqs[0].Key}}) {
		want := map[int]string{0: token1, 1: token1, 2: ""}[i]
		if r.Err != nil || r.Versions.Pending.Version() != want {
			t.Fatalf("reload %d: pending %q, err %v", i, r.Versions.Pending.Version(), r.Err)
		}
		if i < 2 {
			reqs[map[int]int{0: 5, 1: 17}[i]].Known = r.Versions
		}
	}
	// Known pending versions: those keys are polled with DescribeSecret;
	// the other 40 take two batch calls.
	srv.ResetCalls()
	for i, r := range src.FetchMany(ctx, reqs) {
		if r.Err != nil || !r.Unchanged {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if calls := srv.Calls(); calls["BatchGetSecretValue"] != 2 || calls["DescribeSecret"] != 2 || srv.TotalCalls() != 4 {
		t.Fatalf("round with 2 of 42 in rotation: %v, want 2 BatchGetSecretValue and 2 DescribeSecret", calls)
	}
	// One discarded, one finished: both seen, nothing read but the
	// DescribeSecret calls.
	moveStage(t, c, reqs[5].Key, "AWSPENDING", token1, "")
	moveStage(t, c, reqs[17].Key, "AWSCURRENT", reqs[17].Known.Current.Version(), token1)
	srv.ResetCalls()
	res := src.FetchMany(ctx, reqs)
	if r := res[5]; r.Err != nil || r.Unchanged || !r.Versions.Pending.IsZero() || r.Versions.Current.Version() != reqs[5].Known.Current.Version() {
		t.Fatalf("discarded: %+v", r)
	}
	if r := res[17]; r.Err != nil || r.Unchanged || !r.Versions.Pending.IsZero() || r.Versions.Current.Version() != token1 ||
		r.Versions.Previous.Version() != reqs[17].Known.Current.Version() {
		t.Fatalf("finished: %+v", r)
	}
	if calls := srv.Calls(); calls["GetSecretValue"] != 0 || srv.TotalCalls() != 4 {
		t.Fatalf("round after a discard and a finish: %v", calls)
	}
}

// faultyPending is the SDK client with the reads of one version, and of the
// AWSPENDING label, answered by fault: a throttle, or a version without a
// value (a rotation that failed can leave AWSPENDING on one).
type faultyPending struct {
	*secretsmanager.Client
	versionID string
	throttle  bool
}

func (f faultyPending) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.VersionId) != f.versionID && aws.ToString(in.VersionStage) != "AWSPENDING" {
		return f.Client.GetSecretValue(ctx, in, opts...)
	}
	if f.throttle {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	return &secretsmanager.GetSecretValueOutput{VersionId: aws.String(f.versionID), VersionStages: []string{"AWSPENDING"}}, nil
}

// TestPendingReadFails: a throttle while reading the pending version fails
// the fetch on every path (an answer without Pending would tell the Store
// that the candidate is gone); a pending version without a value is none.
func TestPendingReadFails(t *testing.T) {
	for _, byLabel := range []bool{false, true} {
		for _, throttle := range []bool{true, false} {
			t.Run(fmt.Sprintf("byLabel=%v/throttle=%v", byLabel, throttle), func(t *testing.T) {
				srv := smtest.NewServer(t)
				src, err := awssm.New(faultyPending{Client: srv.Client(), versionID: token1, throttle: throttle})
				if err != nil {
					t.Fatal(err)
				}
				ctx := ctxT(t)
				const name = "faulty/db"
				srv.Put(name, "one")
				srv.Put(name, "two")
				srv.Put("faulty/other", "x")
				known, err := src.Fetch(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				stage(t, srv.Client(), name, token1, canary)
				if byLabel {
					defer srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.AccessDenied})()
				}
				var errs []error
				_, err = src.Fetch(ctx, name)
				errs = append(errs, err)
				r := src.FetchIfChanged(ctx, secrets.Request{Key: name, Known: known})
				errs = append(errs, r.Err)
				if !r.Versions.Pending.IsZero() {
					t.Fatal("FetchIfChanged: a pending version without a value was served")
				}
				res := src.FetchMany(ctx, []secrets.Request{{Key: name}, {Key: "faulty/other"}})
				errs = append(errs, res[0].Err)
				for i, err := range errs {
					noLeak(t, err)
					switch {
					case throttle && !errors.Is(err, secrets.ErrTransient):
						t.Fatalf("path %d: err = %v, want ErrTransient", i, err)
					case !throttle && err != nil:
						t.Fatalf("path %d: a pending version without a value failed the read: %v", i, err)
					}
				}
			})
		}
	}
}

// TestPendingByLabel: where DescribeSecret is refused, the source reads the
// three labels, and skips AWSPENDING when a version already read carries
// it.
func TestPendingByLabel(t *testing.T) {
	srv, src := newSource(t)
	c := srv.Client()
	ctx := ctxT(t)
	const name = "label/db"
	srv.Put(name, "one")
	v2 := srv.Put(name, "two")
	defer srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.AccessDenied})()
	fetch := func(step, cur, prev, pend string, gets int) {
		t.Helper()
		srv.ResetCalls()
		v, err := src.Fetch(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if v.Current.Version() != cur || v.Previous.Version() != prev || v.Pending.Version() != pend {
			t.Fatalf("%s: current %q previous %q pending %q, want %q %q %q", step,
				v.Current.Version(), v.Previous.Version(), v.Pending.Version(), cur, prev, pend)
		}
		if n := srv.CallCount("GetSecretValue"); n != gets {
			t.Fatalf("%s: %v, want %d GetSecretValue", step, srv.Calls(), gets)
		}
	}
	if _, err := src.Fetch(ctx, name); err != nil { // learns that DescribeSecret is refused
		t.Fatal(err)
	}
	fetch("no rotation", v2, srv.Versions(name)[0].ID, "", 3)
	stage(t, c, name, token1, "three")
	fetch("staged", v2, srv.Versions(name)[0].ID, token1, 3)
	moveStage(t, c, name, "AWSCURRENT", v2, token1)
	fetch("finished, AWSPENDING left on current", token1, v2, "", 2)
	moveStage(t, c, name, "AWSCURRENT", token1, v2)
	fetch("rolled back, AWSPENDING on previous", v2, token1, token1, 2)
}
