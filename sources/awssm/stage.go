package awssm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// WriteAPI is the part of *secretsmanager.Client that the source's writes
// call (Stage, Promote, Discard, RemovePrevious and the rotation record). A
// client given to New that implements it, as *secretsmanager.Client does,
// makes the source writable; one that implements API alone leaves every
// write failing with secrets.ErrPermission.
type WriteAPI interface {
	API
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
}

var (
	_ WriteAPI                = (*secretsmanager.Client)(nil)
	_ secrets.Stager          = (*Source)(nil)
	_ secrets.PreviousRemover = (*Source)(nil)
	_ secrets.Rotatable       = (*Source)(nil)
)

// maxDerived bounds the derived version ids Stage tries for one current
// version: one more for each candidate discarded since it became current.
const maxDerived = 64

// uuidForm is the canonical form of a UUID: the ClientRequestToken that
// RotateSecret, the console and the SDKs generate.
var uuidForm = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// writer returns the client as a WriteAPI, or an ErrPermission error.
func (s *Source) writer(r secretRef) (WriteAPI, error) {
	w, ok := s.client.(WriteAPI)
	if !ok {
		return nil, fmt.Errorf("awssm: %s: %w: the client %T cannot write (it does not implement awssm.WriteAPI)", keyquote.Quote(r.id), secrets.ErrPermission, s.client)
	}
	return w, nil
}

// writeRef parses a key for a write: a plain name or ARN, without query.
func writeRef(key string) (secretRef, error) {
	r, err := parseKey(key)
	if err != nil {
		return r, err
	}
	if !r.tracksCurrent() {
		return r, fmt.Errorf("awssm: key %s: %w: a rotation writes the secret as it rotates; versionStage and versionId select a version to read", keyquote.Quote(key), secrets.ErrInvalid)
	}
	return r, nil
}

// labels is what DescribeSecret tells of a secret's staging labels: the
// holders of AWSCURRENT, AWSPREVIOUS and AWSPENDING ("" for none), and the
// labels of each version.
type labels struct {
	cur, prev, pend string
	stages          map[string][]string
}

// describe asks DescribeSecret where the labels are. A secret scheduled for
// deletion fails with secrets.ErrNotFound.
func (s *Source) describe(ctx context.Context, r secretRef) (labels, error) {
	d, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.id)}, s.callOptions(false)...)
	if err != nil {
		return labels{}, callError("DescribeSecret", r, "", err)
	}
	if d.DeletedDate != nil {
		return labels{}, fmt.Errorf("awssm: %s: %w: the secret is scheduled for deletion", keyquote.Quote(r.id), secrets.ErrNotFound)
	}
	l := labels{stages: d.VersionIdsToStages}
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, stageCurrent) {
			l.cur = id
		}
		if slices.Contains(st, stagePrevious) {
			l.prev = id
		}
		if slices.Contains(st, stagePending) {
			l.pend = id
		}
	}
	if l.cur == "" {
		return labels{}, fmt.Errorf("awssm: %s: %w: no version carries AWSCURRENT", keyquote.Quote(r.id), secrets.ErrNotFound)
	}
	return l, nil
}

// pending is the version a rotation has staged: AWSPENDING on a version
// other than AWSCURRENT's ("" for none).
func (l labels) pending() string {
	if l.pend == l.cur {
		return ""
	}
	return l.pend
}

// conflict reports a lost condition.
func conflict(r secretRef, format string, args ...any) error {
	return fmt.Errorf("awssm: %s: %w: %s", keyquote.Quote(r.id), secrets.ErrConflict, fmt.Sprintf(format, args...))
}

// apiCode returns the error code of the service's answer in err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// derivedID returns the n-th version id that Stage uses over current when
// the rotation's token is not a UUID: a UUID (version 8, RFC 9562) made
// from a digest of the current version's id and n. Every stager over the
// same current version tries the same ids in the same order, so AWS's own
// check of ClientRequestToken (a second PutSecretValue with the same token
// and another value fails with ResourceExistsException) lets exactly one of
// racing stagers create the pending version.
func derivedID(current string, n int) string {
	sum := sha256.Sum256([]byte("rotor/awssm/stage\x00" + current + "\x00" + strconv.Itoa(n)))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Stage writes req.Value as the pending version of key: PutSecretValue with
// VersionStages ["AWSPENDING"], which leaves AWSCURRENT where it is, so
// readers keep being served the current version. See secrets.Stager.
//
// The pending version's id is the ClientRequestToken of the call. When
// req.Token is a UUID (the form of the tokens that RotateSecret sends a
// rotation function) it is that token, as AWS's rotation protocol requires;
// otherwise (an Agent's rotation id) it is derived from the current
// version's id, so that stagers racing over one current version name the
// same version and AWS lets exactly one create it. A version that
// RotateSecret created for req.Token (AWSPENDING, no value yet) is filled.
//
// The conditions are checked with DescribeSecret first, and a value already
// pending is read to compare it, since AWS moves AWSPENDING without asking
// who held it: a stage with another token can race a stage that is past its
// check. One rotation at a time is kept by the rotation record
// (SaveRotation), which an Agent takes before it stages. Stage costs a
// DescribeSecret and a PutSecretValue, plus a GetSecretValue when a version
// is pending already.
func (s *Source) Stage(ctx context.Context, key string, req secrets.StageRequest) (string, error) {
	r, err := writeRef(key)
	if err != nil {
		return "", err
	}
	if len(req.Value) == 0 {
		return "", fmt.Errorf("awssm: %s: %w: an empty value cannot be staged", keyquote.Quote(r.id), secrets.ErrInvalid)
	}
	if req.Current == "" {
		return "", fmt.Errorf("awssm: %s: %w: StageRequest.Current is required", keyquote.Quote(r.id), secrets.ErrInvalid)
	}
	w, err := s.writer(r)
	if err != nil {
		return "", err
	}
	l, err := s.describe(ctx, r)
	if err != nil {
		return "", err
	}
	if l.cur != req.Current {
		return "", conflict(r, "version %s is current, not %s", keyquote.Quote(l.cur), keyquote.Quote(req.Current))
	}
	token := ""
	if uuidForm.MatchString(req.Token) {
		token = req.Token
	}
	if p := l.pending(); p != "" {
		v, err := s.getValue(ctx, r, "", p)
		switch {
		case err != nil && noSuchVersion(err) && p == req.Token:
			// RotateSecret's version for this token: fill it.
			return s.put(ctx, w, r, p, req.Value)
		case err != nil && noSuchVersion(err):
			return "", conflict(r, "a rotation started by RotateSecret (version %s) is in progress", keyquote.Quote(p))
		case err != nil:
			return "", err
		case bytes.Equal(v.Bytes(), req.Value):
			return p, nil // staged already: a retry
		}
		return "", conflict(r, "version %s is pending with another value: one rotation at a time", keyquote.Quote(p))
	}
	if token != "" {
		if _, ok := l.stages[token]; ok {
			return "", conflict(r, "the rotation's version %s is labelled but not pending", keyquote.Quote(token))
		}
		id, err := s.put(ctx, w, r, token, req.Value)
		if errors.Is(err, errVersionTaken) {
			// A token names one value: this one's version holds another
			// (a candidate staged and discarded earlier).
			return "", conflict(r, "the rotation's version %s holds another value (a candidate discarded earlier): a token stages one value; start a rotation with a new token", keyquote.Quote(token))
		}
		return id, err
	}
	for n := range maxDerived {
		id := derivedID(l.cur, n)
		if st, ok := l.stages[id]; ok && len(st) > 0 {
			continue // labelled (AWSPREVIOUS after a rollback): not a candidate
		}
		got, err := s.put(ctx, w, r, id, req.Value)
		if !errors.Is(err, errVersionTaken) {
			return got, err
		}
		// The id holds another value: a racer's candidate, or one
		// discarded. Which one tells whether to try the next id.
		l2, derr := s.describe(ctx, r)
		if derr != nil {
			return "", derr
		}
		if l2.cur != req.Current {
			return "", conflict(r, "version %s became current while staging", keyquote.Quote(l2.cur))
		}
		if p := l2.pending(); p != "" {
			return "", conflict(r, "version %s was staged meanwhile: one rotation at a time", keyquote.Quote(p))
		}
	}
	return "", fmt.Errorf("awssm: %s: %w: %d candidates were discarded over version %s; update the secret to start afresh", keyquote.Quote(r.id), secrets.ErrConflict, maxDerived, keyquote.Quote(l.cur))
}

// errVersionTaken: PutSecretValue's ClientRequestToken names a version
// with another value (ResourceExistsException).
var errVersionTaken = errors.New("the version id holds another value")

// put stores value as version id with AWSPENDING, and makes sure the label
// is on it: PutSecretValue ignores a retry with the same token and value,
// which leaves the labels as they are, so a candidate discarded and staged
// again gets AWSPENDING back with UpdateSecretVersionStage.
func (s *Source) put(ctx context.Context, w WriteAPI, r secretRef, id string, value []byte) (string, error) {
	in := &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(r.id), ClientRequestToken: aws.String(id), VersionStages: []string{stagePending},
	}
	// A value that is valid UTF-8 is stored as SecretString, which the
	// console shows and rotation functions read; other bytes as
	// SecretBinary.
	if str := string(value); utf8.Valid(value) {
		in.SecretString = &str
	} else {
		in.SecretBinary = bytes.Clone(value)
	}
	out, err := w.PutSecretValue(ctx, in, s.callOptions(false)...)
	if err != nil {
		if apiCode(err) == "ResourceExistsException" {
			return "", errVersionTaken
		}
		return "", callError("PutSecretValue", r, "", err)
	}
	if slices.Contains(out.VersionStages, stagePending) {
		return id, nil
	}
	_, err = w.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.id), VersionStage: aws.String(stagePending), MoveToVersionId: aws.String(id),
	}, s.callOptions(false)...)
	if err != nil {
		if apiCode(err) == "InvalidParameterException" {
			return "", conflict(r, "another version was staged meanwhile")
		}
		return "", callError("UpdateSecretVersionStage", r, "", err)
	}
	return id, nil
}

// moveLabel moves or removes a staging label with UpdateSecretVersionStage.
// AWS checks that from holds the label, so the call is conditional on it:
// InvalidParameterException (the label is elsewhere) is ErrConflict.
func (s *Source) moveLabel(ctx context.Context, w WriteAPI, r secretRef, label, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(r.id), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := w.UpdateSecretVersionStage(ctx, in, s.callOptions(false)...)
	if err != nil {
		if apiCode(err) == "InvalidParameterException" {
			return conflict(r, "%s moved while it was being changed", label)
		}
		return callError("UpdateSecretVersionStage", r, label, err)
	}
	return nil
}

// Promote makes pending the current version of key: UpdateSecretVersionStage
// moves AWSCURRENT from current to pending, which AWS checks (current must
// hold it) and which gives current AWSPREVIOUS; a second call removes
// AWSPENDING from the new current version. Readers see the change in one
// step, the move of AWSCURRENT. See secrets.Stager.
//
// Promote succeeds whenever the promotion it asks for is done, whoever did
// it: a promotion that stopped between the two calls is finished by calling
// again (pending is current, current previous, and AWSPENDING is removed),
// and of two concurrent calls for the same versions both succeed: the one
// whose move of AWSCURRENT loses AWS's condition reads the labels again and
// finds the promotion done. Promote costs a DescribeSecret and two
// UpdateSecretVersionStage calls (a DescribeSecret more after a lost
// condition).
func (s *Source) Promote(ctx context.Context, key, pending, current string) error {
	r, err := writeRef(key)
	if err != nil {
		return err
	}
	w, err := s.writer(r)
	if err != nil {
		return err
	}
	l, err := s.describe(ctx, r)
	if err != nil {
		return err
	}
	switch {
	case l.cur == pending:
		return s.promoted(ctx, w, r, l, pending, current)
	case l.pending() != pending:
		return fmt.Errorf("awssm: %s: %w: version %s is neither pending nor current", keyquote.Quote(r.id), secrets.ErrNotFound, keyquote.Quote(pending))
	case l.cur != current:
		return conflict(r, "version %s is current, not %s", keyquote.Quote(l.cur), keyquote.Quote(current))
	}
	if err := s.moveLabel(ctx, w, r, stageCurrent, pending, current); err != nil {
		if !errors.Is(err, secrets.ErrConflict) {
			return err
		}
		// The condition was lost: someone moved AWSCURRENT meanwhile.
		// Done, if it was this very promotion.
		l, derr := s.describe(ctx, r)
		if derr != nil || l.cur != pending {
			return err
		}
		return s.promoted(ctx, w, r, l, pending, current)
	}
	if err := s.moveLabel(ctx, w, r, stagePending, "", pending); err != nil && !errors.Is(err, secrets.ErrConflict) {
		return err
	}
	return nil
}

// promoted finishes a promotion of pending over current that labels l show
// done (pending holds AWSCURRENT): it checks that current, if anything, is
// previous, and removes AWSPENDING if it is still on pending.
func (s *Source) promoted(ctx context.Context, w WriteAPI, r secretRef, l labels, pending, current string) error {
	if l.prev != current && l.prev != "" {
		return conflict(r, "version %s is current but %s, not %s, is previous", keyquote.Quote(pending), keyquote.Quote(l.prev), keyquote.Quote(current))
	}
	if l.pend == pending {
		if err := s.moveLabel(ctx, w, r, stagePending, "", pending); err != nil && !errors.Is(err, secrets.ErrConflict) {
			return err
		}
	}
	return nil
}

// Discard removes AWSPENDING from pending; the version stays, without a
// label, readable by its id. See secrets.Stager. Discard costs a
// DescribeSecret and an UpdateSecretVersionStage.
func (s *Source) Discard(ctx context.Context, key, pending string) error {
	r, err := writeRef(key)
	if err != nil {
		return err
	}
	w, err := s.writer(r)
	if err != nil {
		return err
	}
	l, err := s.describe(ctx, r)
	if err != nil {
		return err
	}
	switch p := l.pending(); {
	case pending == l.cur:
		return conflict(r, "version %s is current: a current version is never discarded", keyquote.Quote(pending))
	case p == "":
		return nil
	case p != pending:
		return conflict(r, "version %s, not %s, is pending", keyquote.Quote(p), keyquote.Quote(pending))
	}
	return s.moveLabel(ctx, w, r, stagePending, "", pending)
}

// RemovePrevious removes AWSPREVIOUS from previous, so that the retired
// value is no longer served as the previous version; the version stays,
// without a label, readable by its id. See secrets.PreviousRemover. It
// costs a DescribeSecret and an UpdateSecretVersionStage.
func (s *Source) RemovePrevious(ctx context.Context, key, previous string) error {
	r, err := writeRef(key)
	if err != nil {
		return err
	}
	w, err := s.writer(r)
	if err != nil {
		return err
	}
	l, err := s.describe(ctx, r)
	if err != nil {
		return err
	}
	switch {
	case l.prev == "":
		return nil
	case l.prev != previous:
		return conflict(r, "version %s, not %s, is previous", keyquote.Quote(l.prev), keyquote.Quote(previous))
	}
	return s.moveLabel(ctx, w, r, stagePrevious, "", previous)
}
