package awssm

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Fetch returns the versions of the secret that key names (see the package
// documentation for the forms of key). For a plain name or ARN it asks
// DescribeSecret which versions carry AWSCURRENT, AWSPREVIOUS and AWSPENDING,
// then reads each of them by VersionId with GetSecretValue: two calls for a
// secret never rotated, three for one with a previous version, four while a
// rotation has staged a pending version. The versions it returns are those
// of one instant (DescribeSecret's), since a version never changes. Current
// is AWSCURRENT, Previous AWSPREVIOUS (zero for a secret never rotated),
// Pending the holder of AWSPENDING when that is not also AWSCURRENT (zero
// otherwise). If DescribeSecret is refused (AccessDeniedException) while
// GetSecretValue is allowed, Fetch reads the three labels instead, three
// calls, from then on. A key with versionStage or versionId costs one call
// and has neither Previous nor Pending.
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
	v, _, err := s.assemble(ctx, r, secrets.Versions{}, secrets.Secret{}, nil)
	return v, err
}

// assemble returns the versions that r, a key that tracks AWSCURRENT, names
// now, and whether they are those of known (never when known is zero). It
// reuses the Secrets of known and cur (an AWSCURRENT already read, with its
// staging labels curStages) wherever a version id matches, and reads the
// others. It asks DescribeSecret; once that has been refused while
// GetSecretValue is allowed, it reads by staging label instead.
func (s *Source) assemble(ctx context.Context, r secretRef, known secrets.Versions, cur secrets.Secret, curStages []string) (secrets.Versions, bool, error) {
	if !s.describeOff.Load() {
		v, unchanged, err := s.viaDescribe(ctx, r, known, cur)
		if err == nil || !isDenied(err) {
			return v, unchanged, err
		}
		// DescribeSecret refused. If GetSecretValue is allowed, the
		// policy grants it alone: read by label from now on.
		v, lerr := s.viaLabels(ctx, r, cur, curStages)
		if lerr != nil {
			return secrets.Versions{}, false, lerr
		}
		s.describeOff.Store(true)
		return v, !known.Current.IsZero() && sameIDs(v, known), nil
	}
	v, err := s.viaLabels(ctx, r, cur, curStages)
	if err != nil {
		return secrets.Versions{}, false, err
	}
	return v, !known.Current.IsZero() && sameIDs(v, known), nil
}

// sameIDs reports whether a and b name the same current, previous and
// pending versions.
func sameIDs(a, b secrets.Versions) bool {
	return a.Current.Version() == b.Current.Version() &&
		a.Previous.Version() == b.Previous.Version() &&
		a.Pending.Version() == b.Pending.Version()
}

// viaLabels reads the versions of r by staging label, for a policy that
// refuses DescribeSecret: AWSCURRENT (unless cur holds it already, with its
// labels curStages), AWSPREVIOUS, and AWSPENDING unless one of the two
// versions read carries it. Three calls, or two. If AWSCURRENT moves between
// the reads, which their labels show, the versions read are no pair that
// existed and the fetch fails with secrets.ErrTransient: the Store tries
// again after its backoff.
func (s *Source) viaLabels(ctx context.Context, r secretRef, cur secrets.Secret, curStages []string) (secrets.Versions, error) {
	if cur.IsZero() {
		var err error
		if cur, curStages, err = s.getStaged(ctx, r, stageCurrent, ""); err != nil {
			return secrets.Versions{}, err
		}
	}
	prev, prevStages, err := s.getStaged(ctx, r, stagePrevious, "")
	switch {
	case err != nil && noSuchVersion(err):
		// Never rotated: no version carries AWSPREVIOUS.
		prev, prevStages = secrets.Secret{}, nil
	case err != nil:
		// Dropping the previous version on a throttle would tell the
		// Store that it is gone; fail the whole fetch instead.
		return secrets.Versions{}, err
	case prev.Version() == cur.Version():
		return secrets.Versions{}, movedError(r)
	}
	v := secrets.Versions{Current: cur, Previous: prev}
	switch {
	case slices.Contains(curStages, stagePending):
		// The pending version is current: no rotation in progress.
	case slices.Contains(prevStages, stagePending):
		v.Pending = prev
	default:
		pend, pendStages, err := s.getStaged(ctx, r, stagePending, "")
		switch {
		case err != nil && (noSuchVersion(err) || errors.Is(err, secrets.ErrInvalid)):
			// No rotation in progress, or one that failed and left
			// AWSPENDING on a version without a value: no candidate.
		case err != nil:
			// A throttle fails the fetch, as for AWSPREVIOUS: an
			// answer without Pending tells the Store the candidate is
			// gone.
			return secrets.Versions{}, err
		case pend.Version() == cur.Version():
			// AWSPENDING was put on the current version meanwhile.
		case slices.Contains(pendStages, stageCurrent):
			return secrets.Versions{}, movedError(r)
		default:
			v.Pending = pend
		}
	}
	return v, nil
}

// movedError reports that AWSCURRENT moved while the labels were read one
// by one.
func movedError(r secretRef) error {
	return fmt.Errorf("awssm: %s: %w: AWSCURRENT moved while the versions were read; read again", keyquote.Quote(r.id), secrets.ErrTransient)
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
	v, _, err := s.getStaged(ctx, r, stage, versionID)
	return v, err
}

// getStaged is getValue that also returns the staging labels of the version
// read.
func (s *Source) getStaged(ctx context.Context, r secretRef, stage, versionID string) (secrets.Secret, []string, error) {
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
		return secrets.Secret{}, nil, callError("GetSecretValue", r, what, err)
	}
	v, err := newSecret(r, out.VersionId, out.SecretString, out.SecretBinary)
	return v, out.VersionStages, err
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
// req.Known are still those that the key names, and answers Unchanged if so:
// for a plain name or ARN, the holders of AWSCURRENT, AWSPREVIOUS and
// AWSPENDING (the last counted only when it is not also AWSCURRENT) must all
// be those of req.Known.Current, Previous and Pending. Otherwise it reads the
// versions it does not hold with GetSecretValue by VersionId. A version in
// req.Known is never read again (versions are immutable): a pending version
// staged costs one read, the rotation's end (AWSCURRENT moved to the pending
// version) none, and a pending version discarded none, which leaves Pending
// zero. Without req.Known it fetches as Fetch does. req.Known must hold
// versions as this source returned them (the Store passes those), not
// fields selected from them.
//
// If DescribeSecret is refused (AccessDeniedException) while GetSecretValue
// is allowed, the IAM policy grants GetSecretValue alone; the source then
// polls by staging label, as Fetch does then, from then on.
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
	var (
		v         secrets.Versions
		unchanged bool
		err       error
	)
	if r.tracksCurrent() {
		v, unchanged, err = s.assemble(ctx, r, known, secrets.Secret{}, nil)
	} else {
		v, unchanged, err = s.detectOne(ctx, r, known)
	}
	switch {
	case err != nil:
		return secrets.Result{Err: err}
	case unchanged:
		return secrets.Result{Unchanged: true}
	}
	return secrets.Result{Versions: v}
}

// detectOne is detect for a key with versionStage or versionId: one version,
// no previous or pending one.
func (s *Source) detectOne(ctx context.Context, r secretRef, known secrets.Versions) (secrets.Versions, bool, error) {
	denied := false
	if !s.describeOff.Load() {
		v, unchanged, err := s.viaDescribe(ctx, r, known, secrets.Secret{})
		if err == nil || !isDenied(err) {
			return v, unchanged, err
		}
		denied = true
	}
	v, err := s.Fetch(ctx, r.key)
	if err != nil {
		return secrets.Versions{}, false, err
	}
	if denied {
		// DescribeSecret refused, GetSecretValue allowed: the policy
		// grants GetSecretValue alone.
		s.describeOff.Store(true)
	}
	return v, v.Current.Version() == known.Current.Version(), nil
}

// viaDescribe asks DescribeSecret which versions r names now. It reports
// unchanged when they are those of known; otherwise it returns them, taking
// the values of versions in known, and of cur, from there and reading the
// others by VersionId.
func (s *Source) viaDescribe(ctx context.Context, r secretRef, known secrets.Versions, cur secrets.Secret) (v secrets.Versions, unchanged bool, err error) {
	d, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.id)},
		s.callOptions(false)...)
	if err != nil {
		return v, false, callError("DescribeSecret", r, "", err)
	}
	if d.DeletedDate != nil {
		return v, false, fmt.Errorf("awssm: %s: %w: the secret is scheduled for deletion", keyquote.Quote(r.id), secrets.ErrNotFound)
	}
	curID, prevID, pendID := r.versionIDs(d.VersionIdsToStages)
	if curID == "" {
		label := r.stage
		if label == "" {
			label = stageCurrent
		}
		return v, false, fmt.Errorf("awssm: %s: %w: no version carries the staging label %s", keyquote.Quote(r.id), secrets.ErrNotFound, keyquote.Quote(label))
	}
	if !known.Current.IsZero() && curID == known.Current.Version() && prevID == known.Previous.Version() && pendID == known.Pending.Version() {
		return v, true, nil
	}
	have := [...]secrets.Secret{cur, known.Current, known.Previous, known.Pending}
	if v.Current, err = s.versionByID(ctx, r, curID, have[:]); err != nil {
		return secrets.Versions{}, false, err
	}
	if prevID != "" {
		if v.Previous, err = s.versionByID(ctx, r, prevID, have[:]); err != nil {
			return secrets.Versions{}, false, err
		}
	}
	if pendID != "" {
		v.Pending, err = s.versionByID(ctx, r, pendID, have[:])
		switch {
		case err != nil && (noSuchVersion(err) || errors.Is(err, secrets.ErrInvalid)):
			// A failed rotation may leave AWSPENDING on a version without
			// a value, and a version may vanish after DescribeSecret
			// named it: no candidate, not a failure of the fetch.
			v.Pending = secrets.Secret{}
		case err != nil:
			// A throttle fails the fetch: an answer without Pending would
			// tell the Store that the candidate is gone.
			return secrets.Versions{}, false, err
		}
	}
	return v, false, nil
}

// versionIDs picks the ids of the versions that r names out of
// DescribeSecret's VersionIdsToStages: the current one and, for a key that
// tracks AWSCURRENT, the holders of AWSPREVIOUS and of AWSPENDING ("" when
// there is none; AWSPENDING on the current version counts as none: the
// rotation that staged it has finished).
func (r secretRef) versionIDs(stages map[string][]string) (cur, prev, pend string) {
	holder := func(label string) string {
		for id, labels := range stages {
			if slices.Contains(labels, label) {
				return id
			}
		}
		return ""
	}
	switch {
	case r.versionID != "":
		// A pinned version never changes. VersionIdsToStages leaves out
		// versions without labels, which stay readable, so it is not
		// looked up there.
		return r.versionID, "", ""
	case r.stage != "":
		return holder(r.stage), "", ""
	}
	cur, prev, pend = holder(stageCurrent), holder(stagePrevious), holder(stagePending)
	if pend == cur {
		pend = ""
	}
	return cur, prev, pend
}

// versionByID returns the version id, reusing a Secret of have that has that
// id (versions are immutable in Secrets Manager) and reading it otherwise.
func (s *Source) versionByID(ctx context.Context, r secretRef, id string, have []secrets.Secret) (secrets.Secret, error) {
	for _, h := range have {
		if !h.IsZero() && h.Version() == id {
			return h, nil
		}
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
