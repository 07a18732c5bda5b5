package secrets

import (
	"context"
	"errors"
	"time"
)

// This file is the write side of the Source contract: the optional
// capabilities through which a source takes part in a rotation (see package
// secrets/rotate). A source that implements none of them can be read, not
// rotated into.
//
// A rotation of one key moves through versions that the backend names:
//
//	current C ──Stage──▶ current C, pending P ──Promote──▶ current P, previous C
//	                                  └──────Discard─────▶ current C
//
// and through a small record, kept by the backend beside the secret, of how
// far the rotation has gone (see Rotation). Every write is conditional on
// what the caller saw (check-and-set): a write that would overwrite a change
// it did not see fails with ErrConflict and changes nothing. That is what
// makes one rotation at a time hold across processes and machines, and what
// lets any agent started later finish or undo a rotation that another one
// left half-done.

// ErrConflict: a conditional write lost. The backend no longer holds the
// versions or the rotation record the write was conditioned on (another
// writer got there first), or another rotation of the key is in progress.
// Nothing was changed. The caller reads again and decides afresh; retrying the
// same write is pointless.
var ErrConflict = errors.New("conflicting change")

// MaxRotationSize is the largest encoded Rotation (its JSON) that a
// RotationRecorder must accept: 16 KiB.
const MaxRotationSize = 16 << 10

// A Stager is a source that can stage a pending version of a key, promote it
// to current and discard it: AWS Secrets Manager's AWSPENDING label moved to
// AWSCURRENT, a Vault KV v2 version marked pending in the key's custom
// metadata, a pending file beside the current one.
//
// Version ids are the ones Fetch reports: a Stager's Fetch returns a staged
// version as Versions.Pending until it is promoted or discarded, and
// reports the version a promotion replaced as Versions.Previous where the
// backend keeps one.
//
// Keys are as Fetch receives them: without scheme and field selector. A
// rotation writes whole values; a JSON secret is staged as the whole
// document.
//
// All methods are safe for concurrent use, from one process or many: the
// backend arbitrates with its own check-and-set, never with a lock held in
// the process. They honour ctx, never put a value in an error, and classify
// failures as Fetch does (ErrNotFound, ErrPermission, ErrTransient,
// ErrInvalid) plus ErrConflict for a lost condition. A call that fails with
// ErrTransient or a done ctx may or may not have taken effect; since every
// method is idempotent, the caller reads (Fetch) and calls again.
//
// Where the backend has no atomic check-and-set for a condition (AWS
// Secrets Manager moves AWSPENDING without asking who held it), the Stager
// checks and then writes, and the rotation record (RotationRecorder), which
// an agent takes before it stages, is what keeps two rotations apart.
type Stager interface {
	Source

	// Stage writes req.Value as the pending version of key and returns the
	// pending version's id. It never changes the current version: readers
	// keep being served the current one.
	//
	// Stage is conditional: it fails with ErrConflict, writing nothing, when
	// the current version of key is not req.Current, or when a pending
	// version exists that does not hold req.Value (another rotation staged
	// it: one pending version at a time). It is idempotent: when the pending
	// version already holds req.Value, Stage writes nothing and returns that
	// version's id, so a caller that lost the answer to an earlier call may
	// call again. A key that does not exist fails with ErrNotFound (Stage
	// does not create secrets) and an empty value with ErrInvalid.
	//
	// Two Stage calls racing on one key with different values: at most one
	// succeeds, the other fails with ErrConflict.
	Stage(ctx context.Context, key string, req StageRequest) (version string, err error)

	// Promote makes the pending version pending the current version of key;
	// the version it replaces, which must be current, becomes the previous
	// one and the pending version is no longer pending. Readers see the
	// change in one step (a rename, a label moved, a metadata write): never
	// no current version, never a mix.
	//
	// Promote is conditional: it fails with ErrConflict, changing nothing,
	// unless current is the current version and pending the pending one. It
	// is idempotent: when pending is already current and current is
	// previous (or the backend keeps no previous), it returns nil. A pending
	// version that is neither pending nor current fails with ErrNotFound.
	Promote(ctx context.Context, key, pending, current string) error

	// Discard removes the pending version pending of key; the current one
	// is untouched. It is idempotent: when key has no pending version, or
	// pending is gone already, it returns nil. When another version is
	// pending it fails with ErrConflict and removes nothing, and when
	// pending has become current (someone promoted it) it fails with
	// ErrConflict too: a current version is never discarded.
	Discard(ctx context.Context, key, pending string) error
}

// A StageRequest is what Stager.Stage writes.
type StageRequest struct {
	// Current is the id of the current version the caller read; Stage
	// fails with ErrConflict when it is no longer current. Required.
	Current string
	// Value is the new value, copied by the Stager before Stage returns.
	// It must not be empty.
	Value []byte
	// Token identifies the rotation that stages the value (Rotation.ID). A
	// backend that names versions by a caller's token (AWS Secrets
	// Manager's ClientRequestToken) uses it as, or to derive, the pending
	// version's id; others may record it or ignore it. Optional.
	Token string
}

// A PreviousRemover can remove a key's previous version, so that a retired
// credential is no longer served or trusted (a JWT signing key after the
// verifiers' grace window): AWS's AWSPREVIOUS label removed, a Vault KV
// version no longer named previous, a file's previous copy deleted.
//
// RemovePrevious is idempotent (no previous version: nil) and conditional:
// when the previous version is not previous it fails with ErrConflict and
// removes nothing. It never touches the current or pending versions. It is
// safe for concurrent use and classifies errors as Stager's methods do.
type PreviousRemover interface {
	RemovePrevious(ctx context.Context, key, previous string) error
}

// A RotationRecorder keeps one Rotation record per key in the backend beside
// the secret (a Vault KV secret or custom metadata written with
// check-and-set, an AWS tag or a companion secret, a file beside the secret's
// file), so that any agent, started anywhere and at any time later, can read
// how far a rotation went and finish or undo it.
//
// Both methods are safe for concurrent use from one process or many; the
// backend arbitrates with check-and-set on Rotation.Revision. They honour
// ctx, hold no secret value (a Rotation holds none) and classify errors as
// Stager's methods do.
type RotationRecorder interface {
	// LoadRotation returns the record of key with its Revision. When none
	// has ever been saved it returns the zero Rotation (Revision "") and a
	// nil error.
	LoadRotation(ctx context.Context, key string) (Rotation, error)

	// SaveRotation writes rec as the record of key if the stored record's
	// revision is still rec.Revision ("" meaning that no record is stored),
	// and returns rec with the new Revision. Otherwise it fails with
	// ErrConflict and writes nothing. Records are small; a source may
	// refuse one whose JSON is over MaxRotationSize with ErrInvalid.
	//
	// Every successful save gives a new revision, even of an unchanged
	// record, so a save also proves the saver still holds the record (a
	// lease renewal). Of two savers racing with one revision, exactly one
	// succeeds.
	SaveRotation(ctx context.Context, key string, rec Rotation) (Rotation, error)
}

// A Rotatable source is one a rotation agent can rotate a key in: it reads,
// stages and promotes versions, and keeps the rotation record.
type Rotatable interface {
	Stager
	RotationRecorder
}

// A RotationStep is how far a rotation has gone: the last step completed.
// Agents record a step after it has taken effect, so that one started later
// knows what is done and redoes, idempotently, at most the step after it.
type RotationStep string

// The steps of a rotation, in order, and its two ends.
const (
	// StepStarted: the record is taken; nothing is staged yet.
	StepStarted RotationStep = "started"
	// StepStaged: the new value is the pending version (Rotation.Pending).
	StepStaged RotationStep = "staged"
	// StepSet: the downstream (a database role, a key set) accepts the new
	// value. A set may have taken effect before the record says so: an
	// agent finding StepStaged must assume it may have.
	StepSet RotationStep = "set"
	// StepVerified: a login or probe with the new value succeeded.
	StepVerified RotationStep = "verified"
	// StepPromoted: the pending version is current; the one it replaced
	// (Rotation.From) is previous and consumers are moving over.
	StepPromoted RotationStep = "promoted"
	// StepOverlapped: the overlap has passed; consumers no longer use the
	// old value.
	StepOverlapped RotationStep = "overlapped"
	// StepRollingBack: verification failed or the rotation is being undone;
	// the downstream is being restored to the current value and the pending
	// version discarded.
	StepRollingBack RotationStep = "rolling-back"

	// StepDone: the rotation finished; the old value is revoked. Terminal.
	StepDone RotationStep = "done"
	// StepRolledBack: the rotation was undone; the current value is the
	// one it started from. Terminal.
	StepRolledBack RotationStep = "rolled-back"
)

// Terminal reports whether s ends a rotation (StepDone, StepRolledBack, or
// no step at all): a record at a terminal step holds no lock.
func (s RotationStep) Terminal() bool {
	return s == "" || s == StepDone || s == StepRolledBack
}

// A Rotation is the record of a key's latest rotation, kept by a
// RotationRecorder. It holds version ids, names and times, never a value:
// it may be logged and shown.
//
// A record at a non-terminal step is a lock with a lease: its holder renews
// it by saving the record (each save gives a new Revision), and no other
// agent starts a rotation of the key while it does. An agent that sees the
// record keep one Revision for a whole lease, timed on its own clock, may
// take it over (save it with itself as Owner, on the Revision it read) and
// finish or undo the rotation. Expires says when the holder's lease ends by
// the holder's clock, for people reading the record; agents on other
// machines do not compare it with their own clocks, which may be skewed
// (see package secrets/rotate).
type Rotation struct {
	// ID names the rotation, unique across rotations of the key; chosen by
	// the agent that starts it, and passed as StageRequest.Token.
	ID string `json:"id"`
	// Step is the last step completed.
	Step RotationStep `json:"step"`
	// Owner names the agent that holds the record (host, process, a random
	// part): who is working on it.
	Owner string `json:"owner,omitempty"`
	// Expires is when Owner's lease ends, after which another agent may
	// take the record over. Zero on a terminal record.
	Expires time.Time `json:"expires,omitzero"`
	// Started and Updated are when the rotation began and when the record
	// was last saved.
	Started time.Time `json:"started,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// From is the id of the version that was current when the rotation
	// began: the one it replaces.
	From string `json:"from,omitempty"`
	// Pending is the id of the staged version, once staged.
	Pending string `json:"pending,omitempty"`
	// Cause says why a rotation was rolled back or stopped, as an error's
	// message (never a value). Empty otherwise.
	Cause string `json:"cause,omitempty"`
	// Notes holds what the downstream needs to finish or undo the rotation,
	// as short non-secret strings: the role now in use and the one being
	// rotated (alternating roles), a key id. Never a value.
	Notes map[string]string `json:"notes,omitempty"`

	// Revision is the backend's opaque id of this copy of the record (a
	// Vault KV version, a digest of a file), set by LoadRotation and
	// SaveRotation and compared by SaveRotation. It is not part of the
	// stored record.
	Revision string `json:"-"`
}

// Locked reports whether r holds the key's rotation lock at now by the
// clock that wrote Expires: its step is not terminal and its lease has not
// run out. It suits a reader on the holder's own clock (a status page); an
// agent deciding whether to take a record over watches its Revision instead
// (see Rotation).
func (r Rotation) Locked(now time.Time) bool {
	return !r.Step.Terminal() && now.Before(r.Expires)
}

// Clone returns a copy of r whose Notes share no memory with r's.
func (r Rotation) Clone() Rotation {
	if r.Notes != nil {
		n := make(map[string]string, len(r.Notes))
		for k, v := range r.Notes {
			n[k] = v
		}
		r.Notes = n
	}
	return r
}
