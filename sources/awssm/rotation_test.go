package awssm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// downstream stands in for the system whose credential rotates (a
// database): it accepts the passwords it has been given.
type downstream struct {
	mu        sync.Mutex
	passwords map[string]bool
}

func newDownstream(pw string) *downstream {
	return &downstream{passwords: map[string]bool{pw: true}}
}

func (d *downstream) login(pw string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passwords[pw]
}

func (d *downstream) setPassword(pw string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.passwords[pw] = true
}

func (d *downstream) revoke(pw string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.passwords, pw)
}

func passwordJSON(pw string) string {
	b, _ := json.Marshal(map[string]string{"username": "app", "password": pw})
	return string(b)
}

// TestRotationWhileServing runs the four steps of a Secrets Manager rotation
// function (createSecret, setSecret, testSecret, finishSecret) through the
// SDK against the fake, while readers use the Store's value to log in to
// the downstream system in a loop. No read and no login may fail; after the
// rotation the Store serves the new version as current and the old one as
// previous. "alone" polls the key with DescribeSecret, "batched" refreshes
// it in a round with other keys through BatchGetSecretValue.
func TestRotationWhileServing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		others int
	}{{"alone", 0}, {"batched", 2}} {
		t.Run(tc.name, func(t *testing.T) { testRotation(t, tc.others) })
	}
}

func testRotation(t *testing.T, others int) {
	srv, src := newSource(t)
	client := srv.Client()
	ctx := ctxT(t)
	const name = "mcp/db"
	key := "awssm://" + name + "#password"

	created, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(passwordJSON("old-pw")),
	})
	if err != nil {
		t.Fatal(err)
	}
	oldID := aws.ToString(created.VersionId)
	db := newDownstream("old-pw")

	st, clk := newStore(t, src)
	keys := []string{key}
	for i := 0; i < others; i++ {
		other := fmt.Sprintf("mcp/other-%d", i)
		srv.Put(other, "static")
		keys = append(keys, "awssm://"+other)
	}
	for _, k := range keys {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	// Readers: every read must succeed and log in.
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		reads   atomic.Int64
		sawNew  atomic.Int64
		failMu  sync.Mutex
		failure error
	)
	fail := func(err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if failure == nil {
			failure = err
		}
	}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seenNew := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				pw, err := st.Get(context.Background(), key)
				switch {
				case err != nil:
					fail(fmt.Errorf("Get: %w", err))
				case !db.login(pw.Reveal()):
					fail(fmt.Errorf("login with version %s refused", pw.Version()))
				case pw.Reveal() == "new-pw" && !seenNew:
					seenNew = true
					sawNew.Add(1)
				}
				reads.Add(1)
				runtime.Gosched()
			}
		}()
	}
	round := func() {
		t.Helper()
		clk.Advance(st.WorstCaseStaleness())
		waitStatuses(t, st, clk, keys, refreshedAt(clk.Now()))
	}

	// createSecret: the new version, labelled AWSPENDING only.
	const token = "f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e1f"
	if _, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(passwordJSON("new-pw")), VersionStages: []string{"AWSPENDING"},
	}); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	round() // a poll in the middle of the rotation serves the same current
	v, err := st.Versions(ctx, key)
	if err != nil || v.Current.Version() != oldID {
		t.Fatalf("after createSecret the Store serves version %q (err %v), want the old %q", v.Current.Version(), err, oldID)
	}
	// Alone, DescribeSecret shows the pending version, which is read once.
	// A batch sees AWSCURRENT only: the round costs what it did.
	if others == 0 && (srv.TotalCalls() != 2 || v.Pending.Version() != token || v.Pending.Reveal() != "new-pw") {
		t.Fatalf("a poll of one key with a new pending version cost %v (pending %q), want DescribeSecret and GetSecretValue", srv.Calls(), v.Pending.Version())
	}
	if others > 0 && srv.TotalCalls() != 1 {
		t.Fatalf("a round of %d unchanged keys cost %v, want 1 BatchGetSecretValue", len(keys), srv.Calls())
	}
	if others == 0 {
		srv.ResetCalls()
		round() // polled again during the rotation: unchanged
		if srv.TotalCalls() != 1 {
			t.Fatalf("a poll of one key in rotation, unchanged, cost %v, want 1 DescribeSecret", srv.Calls())
		}
	}
	// The pending version is readable by its label.
	if v, err := src.Fetch(ctx, name+"?versionStage=AWSPENDING"); err != nil || v.Current.Version() != token || !v.Previous.IsZero() {
		t.Fatalf("Fetch of AWSPENDING: version %q, err %v", v.Current.Version(), err)
	}

	// setSecret: the downstream system learns the pending password, and
	// keeps accepting the current one.
	pending, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(pending.SecretString)), &fields); err != nil {
		t.Fatal(err)
	}
	db.setPassword(fields["password"])

	// testSecret: the pending password works.
	if !db.login(fields["password"]) {
		t.Fatal("testSecret: the pending password is refused")
	}

	// finishSecret: move AWSCURRENT to the new version.
	desc, err := client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var current string
	for id, stages := range desc.VersionIdsToStages {
		for _, s := range stages {
			if s == "AWSCURRENT" {
				current = id
			}
		}
	}
	if current != oldID {
		t.Fatalf("AWSCURRENT is on %q, want %q", current, oldID)
	}
	if _, err := client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(current),
	}); err != nil {
		t.Fatal(err)
	}

	sub := st.Subscribe()
	defer sub.Close()
	srv.ResetCalls()
	round()
	changes, err := sub.Next(ctx)
	if err != nil || len(changes) != 1 || changes[0].Key != key || changes[0].OldVersion != oldID || changes[0].NewVersion != token {
		t.Fatalf("changes after finishSecret: %+v, %v", changes, err)
	}
	// Alone, the poll reads nothing: DescribeSecret shows AWSCURRENT on the
	// pending version, and AWSPREVIOUS on the old current, both held.
	// Batched, the batch reads the new AWSCURRENT, and DescribeSecret
	// names the new AWSPREVIOUS, the old current.
	if got, want := srv.TotalCalls(), map[bool]int{true: 1, false: 2}[others == 0]; got != want {
		t.Fatalf("the round after finishSecret cost %v, want %d calls", srv.Calls(), want)
	}
	v, err = st.Versions(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Version() != token || v.Current.Reveal() != "new-pw" {
		t.Fatalf("current: version %q, want the new %q", v.Current.Version(), token)
	}
	if v.Previous.Version() != oldID || v.Previous.Reveal() != "old-pw" {
		t.Fatalf("previous: version %q, want the old %q", v.Previous.Version(), oldID)
	}
	if !v.Pending.IsZero() {
		t.Fatalf("pending %q after finishSecret, want none (AWSPENDING is on the current version)", v.Pending.Version())
	}

	// Let every reader see the new password, then stop them.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for sawNew.Load() < 2 {
		select {
		case <-waitCtx.Done():
			t.Fatal("readers never saw the new password")
		default:
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	if failure != nil {
		t.Fatalf("a read failed during the rotation: %v", failure)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads")
	}
	// After the overlap the old password can go; the Store's still works.
	db.revoke("old-pw")
	if pw, err := st.Get(ctx, key); err != nil || !db.login(pw.Reveal()) {
		t.Fatalf("after revoking the old password: %v", err)
	}
}
