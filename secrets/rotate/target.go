package rotate

import (
	"context"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// A Target is the downstream a credential opens: a database role, a key set.
// The Agent drives it through the steps of a rotation; the values it gets
// come from the store, never from the Agent's memory, so that an agent
// started after a crash drives it the same way.
//
// Every method must be idempotent (called again after it succeeded, or
// after a crash that left its effect unknown, it does no harm and succeeds),
// honour ctx, and never put a value in an error. The Agent calls one method
// at a time for a key; a Target shared between keys or agents must be safe
// for concurrent use. A method must not block past ctx, and a write must not
// take effect after ctx has ended: ctx ends where the Agent's lease no longer
// covers the step (see WithLease), after which another agent may take the
// rotation over and undo it, and a write landing then would undo the undo.
// Cancel what was sent, or give the downstream the deadline too, as Postgres
// does with statement_timeout.
type Target interface {
	// Check makes sure that current, the value current in the store, is
	// something this target can rotate (the expected JSON, a known role)
	// and is accepted downstream (a login), before anything is written.
	// Errors that mean the value cannot be rotated should wrap
	// ErrNotRotatable.
	Check(ctx context.Context, current secrets.Secret) error

	// Next returns the value to stage after current: a new password in the
	// same JSON document, the other role of a pair, a new key.
	Next(ctx context.Context, current secrets.Secret) ([]byte, error)

	// Set makes the downstream accept pending (ALTER ROLE ... PASSWORD).
	// It returns notes to keep in the rotation record (non-secret: a role
	// name, a time), which the Agent passes back to InUse and Revoke.
	Set(ctx context.Context, current, pending secrets.Secret) (notes map[string]string, err error)

	// Verify proves that pending works downstream (log in with it, run a
	// probe). An error makes the Agent roll back.
	Verify(ctx context.Context, pending secrets.Secret) error

	// Restore undoes Set: the downstream accepts current (the value current
	// in the store now, read afresh) again. pending is the value that
	// failed; Restore may make it useless.
	Restore(ctx context.Context, current, pending secrets.Secret) error

	// InUse reports how many consumers still use the replaced credential,
	// where the downstream can tell (sessions of the old role), or -1 when
	// it cannot. old is the previous version in the store, zero when the
	// store keeps none.
	InUse(ctx context.Context, old, current secrets.Secret, notes map[string]string) (int, error)

	// Revoke retires the replaced credential downstream once the overlap
	// has passed. old may be zero, as for InUse.
	Revoke(ctx context.Context, old, current secrets.Secret, notes map[string]string) error
}

// A PreviousRetirer is a Target whose old credential lives in the store
// itself (a JWT signing key that verifiers read as the previous version):
// after the overlap the Agent removes the previous version from the store
// (secrets.PreviousRemover) when RetirePrevious reports true.
type PreviousRetirer interface {
	RetirePrevious() bool
}

// An OverlapMinimizer is a Target that needs a longer overlap than
// MinOverlapFactor times the consumers' TTL (a JWT key: the verifiers'
// grace window besides). New takes MinOverlap as the default overlap and
// refuses a shorter WithOverlap.
type OverlapMinimizer interface {
	MinOverlap(consumerTTL time.Duration) time.Duration
}
