package awssm

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Fetch returns the versions of the secret that key names (see the package
// documentation for the forms of key). For a plain name or ARN it reads
// AWSCURRENT and then AWSPREVIOUS with two GetSecretValue calls; a secret
// that has never been rotated has no AWSPREVIOUS and gets a zero Previous.
// If AWSCURRENT moves between the two reads (AWSPREVIOUS then names the
// version just read as current), Fetch asks DescribeSecret which versions
// carry the two labels and reads the one it lacks by VersionId, so the pair
// it returns is one that existed. A key with versionStage or versionId costs
// one call and has no Previous.
//
// Version ids are AWS VersionIds. Errors wrap the secrets sentinels and the
// SDK's error; a canceled ctx yields an error wrapping context.Canceled.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	r, err := parseKey(key)
	if err != nil {
		return secrets.Versions{}, err
	}
	if err := ctx.Err(); err != nil {
		return secrets.Versions{}, ctxError(r, err)
	}
	switch {
	case r.versionID != "":
		cur, err := s.getValue(ctx, r, "", r.versionID)
		return secrets.Versions{Current: cur}, err
	case r.stage != "":
		cur, err := s.getValue(ctx, r, r.stage, "")
		return secrets.Versions{Current: cur}, err
	}
	cur, err := s.getValue(ctx, r, stageCurrent, "")
	if err != nil {
		return secrets.Versions{}, err
	}
	return s.withPrevious(ctx, r, cur)
}

// withPrevious reads AWSPREVIOUS to go with cur, an AWSCURRENT just read.
func (s *Source) withPrevious(ctx context.Context, r secretRef, cur secrets.Secret) (secrets.Versions, error) {
	prev, err := s.getValue(ctx, r, stagePrevious, "")
	switch {
	case err != nil && noSuchVersion(err):
		// Never rotated: no version carries AWSPREVIOUS.
		return secrets.Versions{Current: cur}, nil
	case err != nil:
		// Dropping the previous version on a throttle would tell the
		// Store that it is gone; fail the whole fetch instead.
		return secrets.Versions{}, err
	case prev.Version() == cur.Version():
		// AWSCURRENT moved after cur was read. DescribeSecret names both
		// versions at one instant; versions never change, so reading them
		// by id gives a pair that existed.
		v, unchanged, err := s.viaDescribe(ctx, r, secrets.Versions{Current: cur})
		if unchanged {
			v = secrets.Versions{Current: cur}
		}
		return v, err
	}
	return secrets.Versions{Current: cur, Previous: prev}, nil
}

// noSuchVersion reports whether err is the ResourceNotFoundException that
// GetSecretValue answers for a staging label no version carries.
func noSuchVersion(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// getValue reads one version with GetSecretValue, by staging label or by
// version id.
func (s *Source) getValue(ctx context.Context, r secretRef, stage, versionID string) (secrets.Secret, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.id)}
	what := ""
	if stage != "" {
		in.VersionStage = aws.String(stage)
		what = "versionStage " + keyquote.Quote(stage)
	}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
		what = "versionId " + keyquote.Quote(versionID)
	}
	out, err := s.client.GetSecretValue(ctx, in, s.callOptions(false)...)
	if err != nil {
		return secrets.Secret{}, callError("GetSecretValue", r, what, err)
	}
	return newSecret(r, out.VersionId, out.SecretString, out.SecretBinary)
}

// newSecret builds the Secret of one version from what the API returned.
func newSecret(r secretRef, versionID, str *string, bin []byte) (secrets.Secret, error) {
	id := derefString(versionID)
	switch {
	case id == "":
		return secrets.Secret{}, valueError(r, id, "the response has no VersionId")
	case str != nil:
		return secrets.NewSecretString(r.key, id, *str), nil
	case bin != nil:
		return secrets.NewSecret(r.key, id, bin), nil
	}
	return secrets.Secret{}, valueError(r, id, "the version holds neither SecretString nor SecretBinary")
}

// FetchIfChanged tells with one DescribeSecret call whether the versions in
// req.Known are still those that the key names, and answers Unchanged if so.
// Otherwise it reads the versions it does not hold with GetSecretValue by
// VersionId: after a rotation only the new AWSCURRENT is read, since the old
// one, which became AWSPREVIOUS, is req.Known.Current. AWSPENDING and other
// labels coming and going do not count as a change. Without req.Known it
// fetches as Fetch does. req.Known must hold versions as this source
// returned them (the Store passes those), not fields selected from them.
//
// If DescribeSecret is refused (AccessDeniedException) while GetSecretValue
// is allowed, the IAM policy grants GetSecretValue alone; the source then
// polls with Fetch, two calls a key, from then on.
//
// A secret scheduled for deletion fails with secrets.ErrNotFound.
func (s *Source) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	r, err := parseKey(req.Key)
	if err != nil {
		return secrets.Result{Err: err}
	}
	if req.Known.Current.IsZero() {
		v, err := s.Fetch(ctx, req.Key)
		return secrets.Result{Versions: v, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return secrets.Result{Err: ctxError(r, err)}
	}
	return s.detect(ctx, r, req.Known)
}

// detect is FetchIfChanged for a parsed key with known versions.
func (s *Source) detect(ctx context.Context, r secretRef, known secrets.Versions) secrets.Result {
	if !s.describeOff.Load() {
		v, unchanged, err := s.viaDescribe(ctx, r, known)
		if err == nil || !isDenied(err) {
			return secrets.Result{Versions: v, Unchanged: unchanged, Err: err}
		}
		// DescribeSecret refused. If GetSecretValue is allowed, the
		// policy grants it alone: poll with it from now on.
		v, ferr := s.Fetch(ctx, r.key)
		if ferr != nil {
			return secrets.Result{Err: ferr}
		}
		s.describeOff.Store(true)
		return compareKnown(v, known)
	}
	v, err := s.Fetch(ctx, r.key)
	if err != nil {
		return secrets.Result{Err: err}
	}
	return compareKnown(v, known)
}

// compareKnown answers Unchanged when v names the versions of known.
func compareKnown(v, known secrets.Versions) secrets.Result {
	if v.Current.Version() == known.Current.Version() && v.Previous.Version() == known.Previous.Version() {
		return secrets.Result{Unchanged: true}
	}
	return secrets.Result{Versions: v}
}

// viaDescribe asks DescribeSecret which versions r names now. It reports
// unchanged when they are those of known; otherwise it returns them, taking
// the values of versions in known from there and reading the others by
// VersionId.
func (s *Source) viaDescribe(ctx context.Context, r secretRef, known secrets.Versions) (v secrets.Versions, unchanged bool, err error) {
	d, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.id)},
		s.callOptions(false)...)
	if err != nil {
		return v, false, callError("DescribeSecret", r, "", err)
	}
	if d.DeletedDate != nil {
		return v, false, fmt.Errorf("awssm: %s: %w: the secret is scheduled for deletion", keyquote.Quote(r.id), secrets.ErrNotFound)
	}
	curID, prevID := r.versionIDs(d.VersionIdsToStages)
	if curID == "" {
		label := r.stage
		if label == "" {
			label = stageCurrent
		}
		return v, false, fmt.Errorf("awssm: %s: %w: no version carries the staging label %s", keyquote.Quote(r.id), secrets.ErrNotFound, keyquote.Quote(label))
	}
	if curID == known.Current.Version() && prevID == known.Previous.Version() {
		return v, true, nil
	}
	if v.Current, err = s.versionByID(ctx, r, curID, known); err != nil {
		return secrets.Versions{}, false, err
	}
	if prevID != "" {
		if v.Previous, err = s.versionByID(ctx, r, prevID, known); err != nil {
			return secrets.Versions{}, false, err
		}
	}
	return v, false, nil
}

// versionIDs picks the ids of the versions that r names out of
// DescribeSecret's VersionIdsToStages: the current one and, for a key that
// tracks AWSCURRENT, the holder of AWSPREVIOUS ("" when there is none).
func (r secretRef) versionIDs(stages map[string][]string) (cur, prev string) {
	holder := func(label string) string {
		for id, labels := range stages {
			for _, l := range labels {
				if l == label {
					return id
				}
			}
		}
		return ""
	}
	switch {
	case r.versionID != "":
		// A pinned version never changes. VersionIdsToStages leaves out
		// versions without labels, which stay readable, so it is not
		// looked up there.
		return r.versionID, ""
	case r.stage != "":
		return holder(r.stage), ""
	}
	return holder(stageCurrent), holder(stagePrevious)
}

// versionByID returns the version id, reusing a known Secret that has that
// id (versions are immutable in Secrets Manager) and reading it otherwise.
func (s *Source) versionByID(ctx context.Context, r secretRef, id string, known secrets.Versions) (secrets.Secret, error) {
	switch id {
	case known.Current.Version():
		return known.Current, nil
	case known.Previous.Version():
		return known.Previous, nil
	}
	return s.getValue(ctx, r, "", id)
}

// ctxError reports a context that ended before any call was made.
func ctxError(r secretRef, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("awssm: %s: %w: %w", keyquote.Quote(r.id), secrets.ErrTransient, bounded(err))
	}
	return fmt.Errorf("awssm: %s: %w", keyquote.Quote(r.id), bounded(err))
}
