package rotate

import (
	"errors"

	"github.com/rotorhq/rotor/internal/keyquote"
)

// The classes of a failed rotation, found with errors.Is through an *Error.
// An *Error also wraps the cause, so errors.Is finds the source's classes
// (secrets.ErrConflict, secrets.ErrPermission, ...) as well.
var (
	// ErrInProgress: another agent holds the key's rotation record (it
	// saved the record while this one watched it, or won the race to save
	// it, or ctx ended before the record had stayed unchanged for a lease),
	// or this Agent is already rotating the key. Nothing was changed; try
	// again later.
	ErrInProgress = errors.New("another rotation is in progress")
	// ErrRolledBack: the new value failed (set or verify) and the rotation
	// was undone: the downstream accepts the value current in the store,
	// the pending version is discarded. The *Error wraps the cause.
	ErrRolledBack = errors.New("rotation rolled back")
	// ErrNotRotatable: the source cannot be written (it is not a
	// secrets.Rotatable), or the key holds something the target cannot
	// rotate (not the expected JSON, a missing field or role). Nothing was
	// changed.
	ErrNotRotatable = errors.New("cannot rotate")
	// ErrUnfinished: the rotation stopped part-way (the store or the
	// downstream failed, ctx ended, a step ran out of its share of the
	// lease) and is recorded as in progress; the next run of any agent,
	// once it has watched the record unchanged for a lease, finishes or
	// undoes it.
	ErrUnfinished = errors.New("rotation unfinished")
	// ErrCrashed is returned when a test hook (Config.AfterStep) stops the
	// agent after a step, as a crash would.
	ErrCrashed = errors.New("agent stopped by hook")
)

// An Error reports a rotation of one key that did not finish. Its message
// names the key, the step and the cause, never a value.
type Error struct {
	Key  string // the key as the Agent was given it
	Step string // the step that failed, or the last one reached
	// Class is ErrInProgress, ErrRolledBack, ErrNotRotatable,
	// ErrUnfinished or ErrCrashed.
	Class error
	Err   error // the cause; may be nil
}

// Error names the key, the step, the class and the cause.
func (e *Error) Error() string {
	if e == nil {
		return "rotate: <nil *Error>"
	}
	msg := "rotate " + keyquote.Quote(e.Key)
	if e.Step != "" {
		msg += " at " + e.Step
	}
	if e.Class != nil {
		msg += ": " + e.Class.Error()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the class and the cause.
func (e *Error) Unwrap() []error {
	if e == nil {
		return nil
	}
	var out []error
	if e.Class != nil {
		out = append(out, e.Class)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}
