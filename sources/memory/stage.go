package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// The Source is rotatable: it implements secrets.Stager,
// secrets.RotationRecorder and secrets.PreviousRemover, so a rotation agent
// can be exercised in memory. Every method takes the Source's lock for its
// whole check and write, so its conditions are atomic.
var (
	_ secrets.Rotatable       = (*Source)(nil)
	_ secrets.PreviousRemover = (*Source)(nil)
)

// Stage writes req.Value as the pending version of key; see
// secrets.Stager.Stage for the conditions, which are checked and applied
// under the Source's lock.
func (s *Source) Stage(ctx context.Context, key string, req secrets.StageRequest) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(req.Value) == 0 {
		return "", writeErr("stage", key, secrets.ErrInvalid, "empty value")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.keys[key]
	switch {
	case it == nil:
		return "", writeErr("stage", key, secrets.ErrNotFound, "no such key")
	case it.cur.Version() != req.Current:
		return "", writeErr("stage", key, secrets.ErrConflict, "current version is not the one expected")
	case !it.pend.IsZero() && it.pend.Reveal() == string(req.Value):
		return it.pend.Version(), nil
	case !it.pend.IsZero():
		return "", writeErr("stage", key, secrets.ErrConflict, "another version is pending")
	}
	s.seq++
	it.pend = secrets.NewSecret(key, strconv.FormatUint(s.seq, 10), req.Value)
	return it.pend.Version(), nil
}

// Promote makes pending the current version of key and current the previous
// one; see secrets.Stager.Promote.
func (s *Source) Promote(ctx context.Context, key, pending, current string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.keys[key]
	switch {
	case it == nil:
		return writeErr("promote", key, secrets.ErrNotFound, "no such key")
	case it.cur.Version() == pending && (it.prev.IsZero() || it.prev.Version() == current):
		return nil // done already
	case it.pend.IsZero() || it.pend.Version() != pending:
		if it.cur.Version() == pending {
			return writeErr("promote", key, secrets.ErrConflict, "promoted already, over another version")
		}
		return writeErr("promote", key, secrets.ErrNotFound, "no such pending version")
	case it.cur.Version() != current:
		return writeErr("promote", key, secrets.ErrConflict, "current version is not the one expected")
	}
	it.prev, it.cur, it.pend = it.cur, it.pend, secrets.Secret{}
	return nil
}

// Discard removes the pending version pending of key; see
// secrets.Stager.Discard.
func (s *Source) Discard(ctx context.Context, key, pending string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.keys[key]
	switch {
	case it == nil:
		return nil
	case it.cur.Version() == pending:
		return writeErr("discard", key, secrets.ErrConflict, "the version is current")
	case it.pend.IsZero():
		return nil
	case it.pend.Version() != pending:
		return writeErr("discard", key, secrets.ErrConflict, "another version is pending")
	}
	it.pend = secrets.Secret{}
	return nil
}

// RemovePrevious forgets the previous version of key; see
// secrets.PreviousRemover.
func (s *Source) RemovePrevious(ctx context.Context, key, previous string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.keys[key]
	switch {
	case it == nil || it.prev.IsZero():
		return nil
	case it.prev.Version() != previous:
		return writeErr("remove previous", key, secrets.ErrConflict, "the previous version is not the one expected")
	}
	it.prev = secrets.Secret{}
	return nil
}

// LoadRotation returns the rotation record of key; see
// secrets.RotationRecorder.
func (s *Source) LoadRotation(ctx context.Context, key string) (secrets.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Rotation{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.recs[key]
	if !ok {
		return secrets.Rotation{}, nil
	}
	return r.Clone(), nil
}

// SaveRotation writes the rotation record of key if its revision is still
// rec.Revision; see secrets.RotationRecorder. Records are kept apart from
// the keys' values: Delete leaves a key's record in place.
func (s *Source) SaveRotation(ctx context.Context, key string, rec secrets.Rotation) (secrets.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Rotation{}, err
	}
	if b, err := json.Marshal(rec); err != nil || len(b) > secrets.MaxRotationSize {
		return secrets.Rotation{}, writeErr("save rotation", key, secrets.ErrInvalid, "record too large or not encodable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs[key].Revision != rec.Revision {
		return secrets.Rotation{}, writeErr("save rotation", key, secrets.ErrConflict, "the record changed since it was read")
	}
	s.seq++
	rec = rec.Clone()
	rec.Revision = "r" + strconv.FormatUint(s.seq, 10)
	if s.recs == nil {
		s.recs = map[string]secrets.Rotation{}
	}
	s.recs[key] = rec
	return rec.Clone(), nil
}

func writeErr(op, key string, class error, msg string) error {
	return fmt.Errorf("memory: %s %s: %w: %s", op, keyquote.Quote(key), class, msg)
}
