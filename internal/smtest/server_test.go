package smtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
)

// Helpers.

func getValue(t *testing.T, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) *secretsmanager.GetSecretValueOutput {
	t.Helper()
	out, err := c.GetSecretValue(context.Background(), in)
	if err != nil {
		t.Fatalf("GetSecretValue(%s): %v", aws.ToString(in.SecretId), err)
	}
	return out
}

func getErr(t *testing.T, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) error {
	t.Helper()
	out, err := c.GetSecretValue(context.Background(), in)
	if err == nil {
		t.Fatalf("GetSecretValue(%s) = %v, want an error", aws.ToString(in.SecretId), aws.ToString(out.SecretString))
	}
	return err
}

// errorAs asserts that err wraps a T and returns it.
func errorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) does not wrap %T", err, err, target)
	}
	return target
}

// apiCode returns the error code of the smithy.APIError in err.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	return errorAs[smithy.APIError](t, err).ErrorCode()
}

func stages(t *testing.T, c *secretsmanager.Client, id string) map[string][]string {
	t.Helper()
	out, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret(%s): %v", id, err)
	}
	for _, st := range out.VersionIdsToStages {
		slices.Sort(st)
	}
	return out.VersionIdsToStages
}

func assertStages(t *testing.T, got, want map[string][]string) {
	t.Helper()
	if !maps.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// Tests.

func TestCreateAndGet(t *testing.T) {
	clock := &fakeClock{t: t0}
	srv := smtest.NewServer(t, smtest.WithClock(clock.Now))
	c := srv.Client()
	ctx := context.Background()

	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("mcp/prod"),
		SecretString: aws.String(`{"dbPassword":"p1"}`),
		Description:  aws.String("the MCP server"),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ARN)
	if !regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp/prod-[A-Za-z0-9]{6}$`).MatchString(arn) {
		t.Errorf("ARN = %q", arn)
	}
	if aws.ToString(created.Name) != "mcp/prod" || len(aws.ToString(created.VersionId)) != 36 {
		t.Errorf("CreateSecret = %+v", created)
	}
	if srv.ARN("mcp/prod") != arn {
		t.Errorf("srv.ARN = %q, want %q", srv.ARN("mcp/prod"), arn)
	}
	v1 := aws.ToString(created.VersionId)

	// By name, full ARN and partial ARN, default stage.
	for _, id := range []string{"mcp/prod", arn, arn[:len(arn)-7]} {
		out := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if aws.ToString(out.SecretString) != `{"dbPassword":"p1"}` || aws.ToString(out.VersionId) != v1 ||
			aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "mcp/prod" ||
			!slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) || out.SecretBinary != nil {
			t.Errorf("GetSecretValue(%s) = %+v", id, out)
		}
		if !out.CreatedDate.Equal(t0.Truncate(time.Millisecond)) {
			t.Errorf("CreatedDate = %v, want %v", out.CreatedDate, t0)
		}
	}
	// By stage and by version id.
	out := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mcp/prod"), VersionStage: aws.String("AWSCURRENT")})
	if aws.ToString(out.VersionId) != v1 {
		t.Errorf("by stage: VersionId = %s", aws.ToString(out.VersionId))
	}
	out = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mcp/prod"), VersionId: aws.String(v1)})
	if aws.ToString(out.SecretString) != `{"dbPassword":"p1"}` {
		t.Errorf("by version: %+v", out)
	}
	out = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mcp/prod"), VersionId: aws.String(v1), VersionStage: aws.String("AWSCURRENT")})
	if aws.ToString(out.VersionId) != v1 {
		t.Errorf("by version and stage: %+v", out)
	}

	// What is not there.
	for name, in := range map[string]*secretsmanager.GetSecretValueInput{
		"no secret":          {SecretId: aws.String("mcp/nope")},
		"no version":         {SecretId: aws.String("mcp/prod"), VersionId: aws.String("00000000-0000-4000-8000-000000000000")},
		"no stage":           {SecretId: aws.String("mcp/prod"), VersionStage: aws.String("AWSPREVIOUS")},
		"version not staged": {SecretId: aws.String("mcp/prod"), VersionId: aws.String(v1), VersionStage: aws.String("AWSPENDING")},
		"wrong ARN suffix":   {SecretId: aws.String(arn[:len(arn)-6] + "zzzzzz")},
	} {
		t.Run(name, func(t *testing.T) {
			err := getErr(t, c, in)
			nf := errorAs[*types.ResourceNotFoundException](t, err)
			if nf.ErrorMessage() == "" {
				t.Errorf("empty message: %v", err)
			}
		})
	}

	// A name that exists already.
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("mcp/prod"), SecretString: aws.String("x")})
	errorAs[*types.ResourceExistsException](t, err)

	// A secret without a value has no AWSCURRENT until the first
	// PutSecretValue, which gets it whatever its VersionStages.
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	errorAs[*types.ResourceNotFoundException](t, getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")}))
	put, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("empty"), SecretString: aws.String("first"), VersionStages: []string{"AWSPENDING"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(put.VersionStages, []string{"AWSCURRENT", "AWSPENDING"}) {
		t.Errorf("first version stages = %v", put.VersionStages)
	}
}

func TestPutSecretValueMovesStages(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()

	v1 := srv.Put("db", "one")
	put := func(value string) string {
		t.Helper()
		out, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String(value)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) {
			t.Errorf("PutSecretValue stages = %v", out.VersionStages)
		}
		return aws.ToString(out.VersionId)
	}

	v2 := put("two")
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}})

	v3 := put("three")
	// v1 lost AWSPREVIOUS: it is deprecated, out of VersionIdsToStages.
	assertStages(t, stages(t, c, "db"), map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}})
	assertStages(t, srv.Stages("db"), map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}})

	prev := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String("AWSPREVIOUS")})
	if aws.ToString(prev.SecretString) != "two" {
		t.Errorf("AWSPREVIOUS = %q", aws.ToString(prev.SecretString))
	}
	// A deprecated version is still readable by its id, with no stage.
	old := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String(v1)})
	if aws.ToString(old.SecretString) != "one" || len(old.VersionStages) != 0 {
		t.Errorf("deprecated version = %+v", old)
	}
	if vs := srv.Versions("db"); len(vs) != 3 || vs[0].ID != v1 || vs[0].SecretString != "one" || len(vs[0].Stages) != 0 {
		t.Errorf("Versions = %+v", vs)
	}

	// ListSecretVersionIds leaves deprecated versions out unless asked.
	list, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Versions) != 2 {
		t.Errorf("ListSecretVersionIds = %d versions, want 2", len(list.Versions))
	}
	list, err = c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db"), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Versions) != 3 {
		t.Errorf("ListSecretVersionIds(IncludeDeprecated) = %d versions, want 3", len(list.Versions))
	}

	// UpdateSecret with a value moves AWSCURRENT the same way.
	up, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("db"), SecretString: aws.String("four")})
	if err != nil {
		t.Fatal(err)
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v3: {"AWSPREVIOUS"}, aws.ToString(up.VersionId): {"AWSCURRENT"}})
}

func TestRotation(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()

	v0 := srv.Put("db", "zero")
	v1 := srv.Put("db", "one") // v0 AWSPREVIOUS, v1 AWSCURRENT

	// createSecret: the new value under AWSPENDING.
	pending, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:      aws.String("db"),
		SecretString:  aws.String("two"),
		VersionStages: []string{"AWSPENDING"},
	})
	if err != nil {
		t.Fatal(err)
	}
	v2 := aws.ToString(pending.VersionId)
	if !slices.Equal(pending.VersionStages, []string{"AWSPENDING"}) {
		t.Errorf("pending stages = %v", pending.VersionStages)
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v0: {"AWSPREVIOUS"}, v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}})
	// Readers still get the current value.
	if cur := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}); aws.ToString(cur.SecretString) != "one" {
		t.Errorf("current during rotation = %q", aws.ToString(cur.SecretString))
	}
	// setSecret and testSecret read AWSPENDING.
	if p := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING")}); aws.ToString(p.VersionId) != v2 {
		t.Errorf("AWSPENDING = %s, want %s", aws.ToString(p.VersionId), v2)
	}

	// Moving AWSCURRENT without naming the version it is on fails.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2),
	})
	errorAs[*types.InvalidParameterException](t, err)
	// So does naming the wrong one.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v0),
	})
	errorAs[*types.InvalidParameterException](t, err)

	// finishSecret.
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v1),
	}); err != nil {
		t.Fatal(err)
	}
	// AWSPENDING stays until removed; v1 is AWSPREVIOUS; v0 lost it.
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT", "AWSPENDING"}})
	if cur := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}); aws.ToString(cur.SecretString) != "two" {
		t.Errorf("current after rotation = %q", aws.ToString(cur.SecretString))
	}

	// Removing a label from a version that does not have it fails.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(v1),
	})
	errorAs[*types.InvalidParameterException](t, err)
	// AWSCURRENT can only be moved, not removed.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: aws.String(v2),
	})
	errorAs[*types.InvalidParameterException](t, err)
	// Moving to a version that does not exist.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING"), MoveToVersionId: aws.String("00000000-0000-4000-8000-000000000000"),
		RemoveFromVersionId: aws.String(v2),
	})
	errorAs[*types.ResourceNotFoundException](t, err)

	// The cleanup AWS rotation does: remove AWSPENDING.
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(v2),
	}); err != nil {
		t.Fatal(err)
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}})

	// Rolling back: AWSCURRENT back to v1 makes v2 AWSPREVIOUS.
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v1), RemoveFromVersionId: aws.String(v2),
	}); err != nil {
		t.Fatal(err)
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}})
}

func TestPutSecretValueIdempotency(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	srv.Put("db", "one")

	token := "11111111-2222-4333-8444-555555555555"
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), ClientRequestToken: aws.String(token), SecretString: aws.String("two")}
	first, err := c.PutSecretValue(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.VersionId) != token {
		t.Errorf("VersionId = %s, want the token %s", aws.ToString(first.VersionId), token)
	}
	before := srv.Stages("db")

	// The same request again (a retry) succeeds and changes nothing.
	again, err := c.PutSecretValue(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.VersionId) != token || !slices.Equal(again.VersionStages, []string{"AWSCURRENT"}) {
		t.Errorf("retry = %+v", again)
	}
	assertStages(t, srv.Stages("db"), before)
	if n := len(srv.Versions("db")); n != 2 {
		t.Errorf("%d versions, want 2", n)
	}

	// The same token with another value fails.
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), ClientRequestToken: aws.String(token), SecretString: aws.String("three")})
	errorAs[*types.ResourceExistsException](t, err)

	// CreateSecret retried with its token and value succeeds too.
	ctoken := "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	cin := &secretsmanager.CreateSecretInput{Name: aws.String("fresh"), ClientRequestToken: aws.String(ctoken), SecretString: aws.String("v")}
	c1, err := c.CreateSecret(ctx, cin)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := c.CreateSecret(ctx, cin)
	if err != nil {
		t.Fatalf("CreateSecret retry: %v", err)
	}
	if aws.ToString(c1.ARN) != aws.ToString(c2.ARN) || aws.ToString(c2.VersionId) != ctoken {
		t.Errorf("CreateSecret retry = %+v, first %+v", c2, c1)
	}
}

func TestDescribeSecret(t *testing.T) {
	clock := &fakeClock{t: t0}
	srv := smtest.NewServer(t, smtest.WithClock(clock.Now))
	c := srv.Client()
	ctx := context.Background()

	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("svc/key"), SecretString: aws.String("k1"), Description: aws.String("signing key"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("auth")}},
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	v2 := srv.Put("svc/key", "k2")

	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc/key")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Name) != "svc/key" || aws.ToString(d.ARN) != srv.ARN("svc/key") || aws.ToString(d.Description) != "signing key" {
		t.Errorf("DescribeSecret = %+v", d)
	}
	if !d.CreatedDate.Equal(t0.Truncate(time.Millisecond)) || !d.LastChangedDate.Equal(t0.Add(time.Hour).Truncate(time.Millisecond)) {
		t.Errorf("CreatedDate = %v, LastChangedDate = %v", d.CreatedDate, d.LastChangedDate)
	}
	if d.LastAccessedDate != nil || d.DeletedDate != nil {
		t.Errorf("LastAccessedDate = %v, DeletedDate = %v, want none", d.LastAccessedDate, d.DeletedDate)
	}
	if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "team" {
		t.Errorf("Tags = %+v", d.Tags)
	}
	if len(d.VersionIdsToStages) != 2 || !slices.Equal(d.VersionIdsToStages[v2], []string{"AWSCURRENT"}) {
		t.Errorf("VersionIdsToStages = %v", d.VersionIdsToStages)
	}

	// A read sets LastAccessedDate, to the day.
	getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc/key")})
	d, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc/key")})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC); d.LastAccessedDate == nil || !d.LastAccessedDate.Equal(want) {
		t.Errorf("LastAccessedDate = %v, want %v", d.LastAccessedDate, want)
	}

	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("nope")})
	errorAs[*types.ResourceNotFoundException](t, err)
}

func TestBatchGetSecretValue(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()

	for i := range 5 {
		srv.Put(fmt.Sprintf("app/s%d", i), fmt.Sprintf("value-%d", i))
	}
	srv.Put("other/x", "x")
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/s4")}); err != nil {
		t.Fatal(err)
	}

	out, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		SecretIdList: []string{"app/s0", srv.ARN("app/s1"), "app/missing", "app/s4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 2 ||
		aws.ToString(out.SecretValues[0].SecretString) != "value-0" ||
		aws.ToString(out.SecretValues[1].Name) != "app/s1" ||
		!slices.Equal(out.SecretValues[1].VersionStages, []string{"AWSCURRENT"}) {
		t.Errorf("SecretValues = %+v", out.SecretValues)
	}
	wantErrs := map[string]string{"app/missing": "ResourceNotFoundException", "app/s4": "InvalidRequestException"}
	if len(out.Errors) != len(wantErrs) {
		t.Errorf("Errors = %+v", out.Errors)
	}
	for _, e := range out.Errors {
		if wantErrs[aws.ToString(e.SecretId)] != aws.ToString(e.ErrorCode) || aws.ToString(e.Message) == "" {
			t.Errorf("error entry %s: %s %q", aws.ToString(e.SecretId), aws.ToString(e.ErrorCode), aws.ToString(e.Message))
		}
	}

	// Filters: prefix on the name, in pages; the secret scheduled for
	// deletion is not listed.
	var names []string
	p := secretsmanager.NewBatchGetSecretValuePaginator(c, &secretsmanager.BatchGetSecretValueInput{
		Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}},
		MaxResults: aws.Int32(2),
	})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, v := range page.SecretValues {
			names = append(names, aws.ToString(v.Name))
		}
	}
	if !slices.Equal(names, []string{"app/s0", "app/s1", "app/s2", "app/s3"}) || pages != 2 {
		t.Errorf("filtered names = %v in %d pages", names, pages)
	}
	// Negation.
	out, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"!app/"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 1 || aws.ToString(out.SecretValues[0].Name) != "other/x" {
		t.Errorf("negated filter = %+v", out.SecretValues)
	}

	// Per-secret faults land in Errors.
	remove := srv.AddFault(smtest.Fault{SecretID: "app/s2", Kind: smtest.AccessDenied})
	out, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/s2", "app/s3"}})
	remove()
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 1 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].ErrorCode) != "AccessDeniedException" {
		t.Errorf("per-secret fault: values %+v errors %+v", out.SecretValues, out.Errors)
	}

	// Validation.
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("app/s%d", i)
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: many})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("21 ids: %s", code)
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		SecretIdList: []string{"app/s0"},
		Filters:      []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}},
	})
	errorAs[*types.InvalidParameterException](t, err)
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{})
	errorAs[*types.InvalidParameterException](t, err)
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}}, MaxResults: aws.Int32(21),
	})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("MaxResults 21: %s", code)
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}}, NextToken: aws.String("garbage"),
	})
	errorAs[*types.InvalidNextTokenException](t, err)
}

func TestDeleteSecret(t *testing.T) {
	clock := &fakeClock{t: t0}
	srv := smtest.NewServer(t, smtest.WithClock(clock.Now))
	c := srv.Client()
	ctx := context.Background()
	srv.Put("db", "one")
	arn := srv.ARN("db")

	del, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(7 * 24 * time.Hour).Truncate(time.Millisecond); !del.DeletionDate.Equal(want) || aws.ToString(del.ARN) != arn {
		t.Errorf("DeleteSecret = %+v, want DeletionDate %v", del, want)
	}

	// Scheduled: reads and writes fail with InvalidRequestException;
	// DescribeSecret shows DeletedDate.
	err = getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	ir := errorAs[*types.InvalidRequestException](t, err)
	if ir.ErrorMessage() != "You can't perform this operation on the secret because it was marked for deletion." {
		t.Errorf("message = %q", ir.ErrorMessage())
	}
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String("two")})
	errorAs[*types.InvalidRequestException](t, err)
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	if d.DeletedDate == nil || !d.DeletedDate.Equal(t0.Truncate(time.Millisecond)) {
		t.Errorf("DeletedDate = %v", d.DeletedDate)
	}
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db")})
	errorAs[*types.InvalidRequestException](t, err)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("x")})
	errorAs[*types.InvalidRequestException](t, err)

	// Restore.
	if _, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("db")}); err != nil {
		t.Fatal(err)
	}
	if out := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}); aws.ToString(out.SecretString) != "one" {
		t.Errorf("after restore = %q", aws.ToString(out.SecretString))
	}

	// The window passes on the server's clock: the deletion is permanent.
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db")}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30*24*time.Hour - time.Second)
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatalf("within the window: %v", err)
	}
	clock.Advance(time.Second)
	errorAs[*types.ResourceNotFoundException](t, getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}))
	// The name is free again, under a new ARN.
	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.ARN) == arn {
		t.Errorf("re-created secret has the old ARN")
	}

	// Forced deletion is immediate; forcing on a missing secret succeeds.
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	errorAs[*types.ResourceNotFoundException](t, getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}))
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Errorf("forced delete of a missing secret: %v", err)
	}
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db")})
	errorAs[*types.ResourceNotFoundException](t, err)

	// Invalid combinations.
	srv.Put("db2", "v")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db2"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	errorAs[*types.InvalidParameterException](t, err)
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db2"), RecoveryWindowInDays: aws.Int64(31)})
	errorAs[*types.InvalidParameterException](t, err)
}

func TestSecretBinary(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	blob := []byte{0, 1, 2, 0xfe, 0xff, '"', '\\', '\n'}

	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: blob}); err != nil {
		t.Fatal(err)
	}
	out := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if !bytes.Equal(out.SecretBinary, blob) || out.SecretString != nil {
		t.Errorf("SecretBinary = %v, SecretString = %v", out.SecretBinary, out.SecretString)
	}

	blob2 := bytes.Repeat([]byte{0xab}, 65536)
	if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("bin"), SecretBinary: blob2}); err != nil {
		t.Fatal(err)
	}
	batch, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.SecretValues) != 1 || !bytes.Equal(batch.SecretValues[0].SecretBinary, blob2) {
		t.Errorf("batch binary: %d values", len(batch.SecretValues))
	}
	srv.PutBinary("bin2", []byte("seeded"))
	if out := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin2")}); string(out.SecretBinary) != "seeded" {
		t.Errorf("seeded binary = %q", out.SecretBinary)
	}

	// Too big, and both kinds at once.
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("bin"), SecretBinary: make([]byte, 65537)})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("65537 bytes: %s", code)
	}
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("bin"), SecretBinary: blob, SecretString: aws.String("s")})
	errorAs[*types.InvalidParameterException](t, err)
}

func TestValidation(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	srv.Put("db", "v")

	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!"), SecretString: aws.String("x")})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("bad name: %s", code)
	}
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String("AWSCURRENT")})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("short VersionId: %s", code)
	}
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "colour", Values: []string{"x"}}}})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("bad filter key: %s", code)
	}
}

func TestListSecrets(t *testing.T) {
	clock := &fakeClock{t: t0}
	srv := smtest.NewServer(t, smtest.WithClock(clock.Now))
	c := srv.Client()
	ctx := context.Background()
	for _, n := range []string{"b", "a", "c"} {
		srv.Put(n, "v")
		clock.Advance(time.Minute)
	}
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	list := func(in *secretsmanager.ListSecretsInput) []string {
		t.Helper()
		out, err := c.ListSecrets(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range out.SecretList {
			names = append(names, aws.ToString(e.Name))
		}
		return names
	}
	if got := list(&secretsmanager.ListSecretsInput{}); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("ListSecrets = %v", got)
	}
	if got := list(&secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true), SortBy: types.SortByTypeName}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("ListSecrets(planned, by name) = %v", got)
	}
	if got := list(&secretsmanager.ListSecretsInput{SortOrder: types.SortOrderTypeDesc}); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ListSecrets(desc) = %v", got)
	}
}

func TestUnknownOperation(t *testing.T) {
	srv := smtest.NewServer(t)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "secretsmanager.FlyToTheMoon")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || body["__type"] != "UnknownOperationException" || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("status %d, body %v, headers %v", resp.StatusCode, body, resp.Header)
	}

	// An operation of the service that the fake lacks, through the SDK.
	_, err = srv.Client().TagResource(context.Background(), &secretsmanager.TagResourceInput{SecretId: aws.String("x"), Tags: []types.Tag{}})
	if code := apiCode(t, err); code != "UnknownOperationException" {
		t.Errorf("TagResource: %s", code)
	}
	if srv.CallCount("FlyToTheMoon") != 1 || srv.CallCount("TagResource") != 1 {
		t.Errorf("Calls = %v", srv.Calls())
	}
}

// TestWireFormat checks the raw JSON of an answer: timestamps are numbers,
// the value is where the SDK looks for it, errors have __type.
func TestWireFormat(t *testing.T) {
	srv := smtest.NewServer(t)
	srv.Put("db", "s3cret")
	srv.PutBinary("bin", []byte{0xff, 0x00})
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	call := func(op, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "secretsmanager."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v in %s", op, err, raw)
		}
		return resp.StatusCode, resp.Header, m
	}

	status, h, m := call("GetSecretValue", `{"SecretId":"db"}`)
	if status != 200 || h.Get("X-Amzn-Requestid") == "" {
		t.Errorf("status %d, headers %v", status, h)
	}
	if _, ok := m["CreatedDate"].(float64); !ok {
		t.Errorf("CreatedDate = %#v, want a JSON number", m["CreatedDate"])
	}
	if m["SecretString"] != "s3cret" || m["SecretBinary"] != nil {
		t.Errorf("GetSecretValue = %v", m)
	}
	_, _, m = call("GetSecretValue", `{"SecretId":"bin"}`)
	if m["SecretBinary"] != "/wA=" {
		t.Errorf("SecretBinary = %#v, want base64 /wA=", m["SecretBinary"])
	}
	status, _, m = call("GetSecretValue", `{"SecretId":"nope"}`)
	if status != 400 || m["__type"] != "ResourceNotFoundException" || m["Message"] != "Secrets Manager can't find the specified secret." {
		t.Errorf("not found: %d %v", status, m)
	}
	status, _, m = call("GetSecretValue", `{"SecretId": 42}`)
	if status != 400 || m["__type"] != "SerializationException" {
		t.Errorf("malformed: %d %v", status, m)
	}
	status, _, m = call("GetSecretValue", `{}`)
	if status != 400 || m["__type"] != "ValidationException" {
		t.Errorf("no SecretId: %d %v", status, m)
	}
}

func TestCallCounting(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	srv.Put("a", "1") // seeding is not a call
	srv.Put("b", "2")
	if n := srv.TotalCalls(); n != 0 {
		t.Fatalf("TotalCalls after seeding = %d", n)
	}

	for range 3 {
		getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
	}
	if _, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")}) // errors count
	remove := srv.AddFault(smtest.Fault{Kind: smtest.Throttle})
	getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")}) // faults count
	remove()

	want := map[string]int{"GetSecretValue": 5, "DescribeSecret": 1}
	if got := srv.Calls(); !maps.Equal(got, want) {
		t.Errorf("Calls = %v, want %v", got, want)
	}
	if srv.CallCount("GetSecretValue") != 5 || srv.CallCount("PutSecretValue") != 0 || srv.TotalCalls() != 6 {
		t.Errorf("CallCount/TotalCalls = %d/%d", srv.CallCount("GetSecretValue"), srv.TotalCalls())
	}
	srv.ResetCalls()
	if srv.TotalCalls() != 0 || len(srv.Calls()) != 0 {
		t.Errorf("after ResetCalls: %v", srv.Calls())
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	srv.Put("shared", "0")

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 10 {
		wg.Go(func() {
			for j := range 5 {
				if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
					SecretId: aws.String("shared"), SecretString: aws.String(fmt.Sprintf("%d-%d", i, j)),
				}); err != nil {
					errs <- err
				}
				if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("shared")}); err != nil {
					errs <- err
				}
				_ = srv.Stages("shared")
				_ = srv.Calls()
			}
		})
		wg.Go(func() {
			remove := srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.Throttle, Count: 1})
			defer remove()
			srv.Put(fmt.Sprintf("own-%d", i), "v")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 51 versions, exactly one AWSCURRENT and one AWSPREVIOUS.
	st := srv.Stages("shared")
	if len(st) != 2 || len(srv.Versions("shared")) != 51 {
		t.Errorf("stages %v over %d versions", st, len(srv.Versions("shared")))
	}
	if srv.CallCount("PutSecretValue") != 50 || srv.CallCount("GetSecretValue") != 50 {
		t.Errorf("Calls = %v", srv.Calls())
	}
}
