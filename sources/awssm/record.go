package awssm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// The rotation record of a key lives in a companion secret, a secret of its
// own beside the rotated one, named by WithRecordName (DefaultRecordName:
// the secret's name and "/rotor-rotation"). Its value is the record's JSON,
// which holds version ids, steps, owners and times, never a value; its
// versions are the record's revisions.
//
// Why a companion secret, and not a tag or a version of the secret itself:
//
//   - Check-and-set. SaveRotation must let exactly one of racing savers
//     win. Tags have no condition at all (TagResource overwrites), and a
//     record is up to 16 KiB where a tag value holds 256 characters. A
//     secret's ClientRequestToken is a condition AWS enforces: each save
//     writes the version whose id is derived from the revision it read, so
//     savers of one revision all write the same version id, and AWS
//     creates it once (a second PutSecretValue with that id and another
//     body fails with ResourceExistsException). A stale saver's id exists
//     already, and fails the same way.
//   - Quotas and history. Every save is a version; AWS advises against
//     more than one PutSecretValue every 10 minutes per secret, sustained,
//     and keeps unlabelled versions for 24 hours. A rotation saves its
//     record a few dozen times (each step, and each lease renewal), which
//     would crowd the rotated secret's own versions and its CloudTrail
//     history of value changes; in a companion it touches nothing a
//     consumer reads.
//   - What an operator sees: a secret named after the rotated one, whose
//     value can be read in the console as JSON and whose description says
//     what it is; deleting it releases a stuck lock, with or without a
//     recovery window: a first save that finds it scheduled for deletion
//     restores it and writes over it (see SaveRotation).
//   - IAM: the agent's policy names the companion's ARN as well (or a
//     prefix that covers both); its value needs no customer managed KMS
//     key, and is encrypted with the account's aws/secretsmanager key.
//
// The cost: a secret per rotated key (AWS bills secrets by the month), and
// one GetSecretValue per LoadRotation, one PutSecretValue (CreateSecret the
// first time) per SaveRotation. For a key given as a full ARN the companion
// is created in the client's own account and region, by name.

// DefaultRecordName is the companion secret of a key's rotation record:
// the secret's name followed by "/rotor-rotation".
func DefaultRecordName(name string) string { return name + "/rotor-rotation" }

// WithRecordName sets the name of the secret that keeps a key's rotation
// record, given the name of the key's secret (default DefaultRecordName).
// It must return a valid secret name, different for every key, and never
// the name of a secret that something else writes.
func WithRecordName(fn func(secretName string) string) Option {
	return func(s *Source) error {
		if fn == nil {
			return errors.New("awssm: WithRecordName(nil)")
		}
		s.recordName = fn
		return nil
	}
}

// storedRotation is the record as stored: the Rotation and a nonce, which
// makes every save's body unique, so that two savers of one revision never
// both succeed by writing equal bodies.
type storedRotation struct {
	secrets.Rotation
	Nonce string `json:"nonce"`
}

// recordRef returns the companion secret of key.
func (s *Source) recordRef(ctx context.Context, key string) (secretRef, secretRef, error) {
	r, err := writeRef(key)
	if err != nil {
		return r, r, err
	}
	name := r.id
	if strings.HasPrefix(r.id, "arn:") {
		if n, ok := s.names.Load(r.id); ok {
			name = n.(string)
		} else {
			d, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.id)}, s.callOptions(false)...)
			if err != nil {
				return r, r, callError("DescribeSecret", r, "", err)
			}
			name = derefString(d.Name)
			s.names.Store(r.id, name)
		}
	}
	rn := s.recordName(name)
	return r, secretRef{key: rn, id: rn}, nil
}

// LoadRotation reads the record of key from its companion secret: one
// GetSecretValue. No companion secret (or one scheduled for deletion) is no
// record: the zero Rotation. See secrets.RotationRecorder.
func (s *Source) LoadRotation(ctx context.Context, key string) (secrets.Rotation, error) {
	_, rr, err := s.recordRef(ctx, key)
	if err != nil {
		return secrets.Rotation{}, err
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(rr.id)}, s.callOptions(false)...)
	if err != nil {
		err = callError("GetSecretValue", rr, "", err)
		if errors.Is(err, secrets.ErrNotFound) {
			return secrets.Rotation{}, nil
		}
		return secrets.Rotation{}, err
	}
	var st storedRotation
	if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &st) != nil {
		return secrets.Rotation{}, fmt.Errorf("awssm: %s: %w: the rotation record is not the JSON of a record", keyquote.Quote(rr.id), secrets.ErrInvalid)
	}
	rec := st.Rotation
	rec.Revision = derefString(out.VersionId)
	return rec, nil
}

// Restorer is the optional part of a WriteAPI client that lets SaveRotation
// take back a record secret scheduled for deletion; *secretsmanager.Client
// implements it.
type Restorer interface {
	RestoreSecret(ctx context.Context, in *secretsmanager.RestoreSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error)
}

var _ Restorer = (*secretsmanager.Client)(nil)

// reclaimRecord writes body as the first record over a companion secret
// scheduled for deletion, whose name CreateSecret refuses until the
// recovery window ends: it reads which version was current when it was
// deleted, restores it (RestoreSecret), and writes the revision that
// follows that version, with the same check-and-set as every save: of
// savers racing to reclaim it, and the agent that held the deleted record,
// exactly one writes that version id. It returns the new revision.
//
// A saver that stops between the restore and the write leaves the deleted
// record back in place; deleting it again releases the lock again.
func (s *Source) reclaimRecord(ctx context.Context, w WriteAPI, r, rr secretRef, body []byte) (string, error) {
	const force = "delete it without a recovery window (DeleteSecret with ForceDeleteWithoutRecovery; aws secretsmanager delete-secret --force-delete-without-recovery) to release the lock"
	rs, ok := w.(Restorer)
	if !ok {
		return "", fmt.Errorf("awssm: %s: %w: the rotation record %s is scheduled for deletion, and the client %T cannot restore it (no RestoreSecret): %s",
			keyquote.Quote(r.id), secrets.ErrConflict, keyquote.Quote(rr.id), w, force)
	}
	d, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(rr.id)}, s.callOptions(false)...)
	if err != nil {
		return "", callError("DescribeSecret", rr, "", err)
	}
	if d.DeletedDate == nil {
		return "", conflict(r, "a rotation record exists already (it was restored meanwhile)")
	}
	deleted := ""
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, stageCurrent) {
			deleted = id
		}
	}
	if _, err := rs.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(rr.id)}, s.callOptions(false)...); err != nil {
		err = callError("RestoreSecret", rr, "", err)
		if errors.Is(err, secrets.ErrPermission) {
			return "", fmt.Errorf("%w; the rotation record is scheduled for deletion: allow secretsmanager:RestoreSecret on it, or %s", err, force)
		}
		return "", err
	}
	next := nextRevision(deleted)
	_, err = w.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(rr.id), ClientRequestToken: aws.String(next), SecretString: aws.String(string(body)),
	}, s.callOptions(false)...)
	if err != nil {
		if apiCode(err) == "ResourceExistsException" {
			return "", conflict(r, "the rotation record was taken back by another saver")
		}
		return "", callError("PutSecretValue", rr, "", err)
	}
	return next, nil
}

// nextRevision is the version id of the save that follows revision rev
// ("" for the first save).
func nextRevision(rev string) string { return derivedID("record:"+rev, 0) }

// SaveRotation writes rec as the record of key if its revision is still
// rec.Revision: CreateSecret of the companion for the first record,
// PutSecretValue afterwards, each with the ClientRequestToken derived from
// rec.Revision, which AWS lets only one saver create. The new revision is
// that token. See secrets.RotationRecorder.
//
// A companion secret scheduled for deletion (DeleteSecret with a recovery
// window, its default) is no record, as LoadRotation reads it; since
// CreateSecret refuses its name until the window ends, the first save
// restores it (RestoreSecret, which the client must implement, see
// Restorer, and IAM allow on the record secret) and writes the revision
// that follows the deleted one, conditional as any save. Without
// RestoreSecret the save fails with secrets.ErrConflict, or
// secrets.ErrPermission when IAM denies it, and the error says what an
// operator does: allow it, or delete the record secret with
// ForceDeleteWithoutRecovery.
//
// The companion secret is written by rotor alone: a value put there by hand
// (a version outside the chain of derived ids) is overwritten by the next
// save over the revision it replaced.
func (s *Source) SaveRotation(ctx context.Context, key string, rec secrets.Rotation) (secrets.Rotation, error) {
	r, rr, err := s.recordRef(ctx, key)
	if err != nil {
		return secrets.Rotation{}, err
	}
	w, err := s.writer(r)
	if err != nil {
		return secrets.Rotation{}, err
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return secrets.Rotation{}, fmt.Errorf("awssm: %s: %w: the record does not encode: %w", keyquote.Quote(r.id), secrets.ErrInvalid, err)
	}
	if len(plain) > secrets.MaxRotationSize {
		return secrets.Rotation{}, fmt.Errorf("awssm: %s: %w: the record's JSON is %d bytes, over %d", keyquote.Quote(r.id), secrets.ErrInvalid, len(plain), secrets.MaxRotationSize)
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	body, err := json.Marshal(storedRotation{Rotation: rec, Nonce: hex.EncodeToString(nonce)})
	if err != nil {
		return secrets.Rotation{}, fmt.Errorf("awssm: %s: %w: the record does not encode: %w", keyquote.Quote(r.id), secrets.ErrInvalid, err)
	}
	next := nextRevision(rec.Revision)
	if rec.Revision == "" {
		_, err = w.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(rr.id), ClientRequestToken: aws.String(next), SecretString: aws.String(string(body)),
			Description: aws.String("rotor: the rotation record of " + r.id + " (steps, version ids, owner; no secret value)"),
		}, s.callOptions(false)...)
		if err != nil {
			var ae smithy.APIError
			switch {
			case apiCode(err) == "ResourceExistsException":
				return secrets.Rotation{}, conflict(r, "a rotation record exists already")
			case errors.As(err, &ae) && ae.ErrorCode() == "InvalidRequestException" && isDeletion(ae.ErrorMessage()):
				next, err = s.reclaimRecord(ctx, w, r, rr, body)
				if err != nil {
					return secrets.Rotation{}, err
				}
			default:
				return secrets.Rotation{}, callError("CreateSecret", rr, "", err)
			}
		}
	} else {
		_, err = w.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(rr.id), ClientRequestToken: aws.String(next), SecretString: aws.String(string(body)),
		}, s.callOptions(false)...)
		if err != nil {
			switch apiCode(err) {
			case "ResourceExistsException":
				return secrets.Rotation{}, conflict(r, "the rotation record changed since revision %s", keyquote.Quote(rec.Revision))
			case "ResourceNotFoundException":
				return secrets.Rotation{}, conflict(r, "no rotation record is stored, not revision %s", keyquote.Quote(rec.Revision))
			}
			return secrets.Rotation{}, callError("PutSecretValue", rr, "", err)
		}
	}
	saved := rec.Clone()
	saved.Revision = next
	return saved, nil
}
