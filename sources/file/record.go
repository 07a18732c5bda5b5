package file

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rotorhq/rotor/secrets"
)

// recordFile is the content of a rotation record file
// (".name.rotor-rotation"): the record and its revision, a random id that
// every save replaces.
type recordFile struct {
	secrets.Rotation
	Rev string `json:"revision"`
}

// LoadRotation reads the rotation record kept beside key's file; see
// secrets.RotationRecorder. With no record file it returns the zero
// Rotation. A record file that does not parse fails with
// secrets.ErrInvalid.
func (s *Source) LoadRotation(ctx context.Context, key string) (secrets.Rotation, error) {
	const op = "load rotation"
	if err := ctx.Err(); err != nil {
		return secrets.Rotation{}, fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	path, err := s.path(key)
	if err != nil {
		return secrets.Rotation{}, err
	}
	return s.loadRecord(path)
}

func (s *Source) loadRecord(path string) (secrets.Rotation, error) {
	data, fi, err := s.readCompanion(recordPath(path))
	if err != nil || fi == nil {
		return secrets.Rotation{}, err
	}
	var rf recordFile
	if err := json.Unmarshal(data, &rf); err != nil || rf.Rev == "" {
		return secrets.Rotation{}, failf(secrets.ErrInvalid, recordPath(path), "not a rotation record")
	}
	rf.Rotation.Revision = rf.Rev
	return rf.Rotation, nil
}

// SaveRotation writes rec as the record of key if the stored record's
// revision is still rec.Revision; see secrets.RotationRecorder. The
// check and the write happen under the key's write lock; the record file is
// replaced atomically (temporary file, sync, rename), so a reader never sees
// half a record and a writer that dies leaves the record before or after its
// save. A key whose file cannot be written (see ErrNotWritable) cannot keep
// a record either.
func (s *Source) SaveRotation(ctx context.Context, key string, rec secrets.Rotation) (secrets.Rotation, error) {
	const op = "save rotation"
	if err := ctx.Err(); err != nil {
		return secrets.Rotation{}, fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return secrets.Rotation{}, err
	}
	out := rec.Clone()
	out.Revision = randomHex(8)
	data, err := json.Marshal(recordFile{Rotation: out, Rev: out.Revision})
	if err != nil || len(data) > secrets.MaxRotationSize {
		return secrets.Rotation{}, writeErr(op, e.path, secrets.ErrInvalid, "record too large or not encodable")
	}
	fi, err := s.writable(op, e.path)
	if err != nil {
		return secrets.Rotation{}, err
	}
	lk, err := s.lockWrite(ctx, op, e)
	if err != nil {
		return secrets.Rotation{}, err
	}
	defer s.unlockWrite(e, lk)
	stored, err := s.loadRecord(e.path)
	if err != nil {
		return secrets.Rotation{}, err
	}
	if stored.Revision != rec.Revision {
		return secrets.Rotation{}, writeErr(op, e.path, secrets.ErrConflict, "the record changed since it was read")
	}
	if err := s.writeAtomic(op, recordPath(e.path), data, fi, lk); err != nil {
		return secrets.Rotation{}, err
	}
	return out, nil
}
