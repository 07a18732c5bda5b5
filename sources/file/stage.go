package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rotorhq/rotor/secrets"
)

// The Source is rotatable (see the package documentation, "Rotation").
var (
	_ secrets.Rotatable       = (*Source)(nil)
	_ secrets.PreviousRemover = (*Source)(nil)
)

// writeState is what a writer holding a key's lock reads before it decides:
// the current file and the pending one.
type writeState struct {
	fi      os.FileInfo // the key's file
	cur     []byte      // its value, as Fetch serves it
	curRaw  []byte      // its bytes, which a previous copy keeps
	curID   string
	pend    []byte // the pending value, as Fetch serves it; nil when no pending file exists
	pendID  string
	pendErr error
}

// readForWrite reads the key's file and its pending file, strictly: any
// error is returned, not taken for an absent file. The caller holds the
// lock.
func (s *Source) readForWrite(ctx context.Context, op, path string) (writeState, error) {
	var w writeState
	fi, err := s.writable(op, path)
	if err != nil {
		return w, err
	}
	r, err := s.read(ctx, path)
	if err != nil {
		return w, err
	}
	w.fi, w.cur, w.curRaw, w.curID = fi, r.data, r.raw, secrets.ContentVersion(r.data)
	pend, _, pfi, err := s.readValueCompanion(pendingPath(path))
	if err != nil {
		return w, err
	}
	if pfi != nil {
		w.pend, w.pendID = pend, secrets.ContentVersion(pend)
		if w.pend == nil {
			w.pend = []byte{}
		}
	}
	return w, nil
}

// Stage writes req.Value as the pending file beside key's file
// (".name.rotor-pending"), written whole and synced before it is renamed
// into place; see secrets.Stager.Stage for the conditions, which are checked
// and applied under the key's write lock. The pending file holds req.Value
// byte for byte, and is read as the key's file is: the pending version's
// value and id are those Fetch serves, before and after Promote (with
// WithTrimNewline, those of req.Value without its final line ending). The
// pending file gets the mode and owner of the current one, so that whoever
// reads the key can read it.
//
// A value that the key's file could not hold fails with secrets.ErrInvalid:
// empty (with WithTrimNewline, a line ending alone), over WithMaxSize, not
// valid JSON for a *.json file, or served as the current value is. A key
// that is not a regular file of its own (a symbolic link, a file reached
// through a link to a directory, a file in a Kubernetes-style volume at any
// depth, a read-only file system) fails with ErrNotWritable; see "Rotation"
// in the package documentation.
func (s *Source) Stage(ctx context.Context, key string, req secrets.StageRequest) (string, error) {
	const op = "stage"
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return "", err
	}
	val := s.value(req.Value) // what Fetch will serve
	switch {
	case len(val) == 0:
		return "", writeErr(op, e.path, secrets.ErrInvalid, "empty value")
	case int64(len(req.Value)) > s.maxSize:
		return "", writeErr(op, e.path, secrets.ErrInvalid, "value larger than the size limit")
	case isJSONPath(e.path) && !json.Valid(val):
		return "", writeErr(op, e.path, secrets.ErrInvalid, "the value of a .json file is not valid JSON")
	}
	if _, err := s.writable(op, e.path); err != nil {
		return "", err // before the lock: nothing is created beside a file that cannot be written
	}
	lk, err := s.lockWrite(ctx, op, e)
	if err != nil {
		return "", err
	}
	defer s.unlockWrite(e, lk)
	w, err := s.readForWrite(ctx, op, e.path)
	if err != nil {
		return "", err
	}
	id := secrets.ContentVersion(val)
	switch {
	case w.curID != req.Current:
		return "", writeErr(op, e.path, secrets.ErrConflict, "current version is not the one expected")
	case id == w.curID:
		return "", writeErr(op, e.path, secrets.ErrInvalid, "the value is the current one")
	case w.pend != nil && bytes.Equal(w.pend, val):
		return w.pendID, nil
	case w.pend != nil:
		return "", writeErr(op, e.path, secrets.ErrConflict, "another version is pending")
	}
	if err := s.writeAtomic(op, pendingPath(e.path), req.Value, w.fi, lk); err != nil {
		return "", err
	}
	return id, nil
}

// Promote makes the pending file the key's file; see secrets.Stager.Promote.
// Under the key's write lock it first writes the current value to
// ".name.rotor-previous-<pending>", the previous version of the version being
// promoted, then renames the pending file over the key's file: a reader
// opens the old file or the new one, never none and never a mix, and the
// previous version survives a restart of every process that reads the key.
// Copies that belonged to earlier versions are removed afterwards.
func (s *Source) Promote(ctx context.Context, key, pending, current string) error {
	const op = "promote"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return err
	}
	if _, err := s.writable(op, e.path); err != nil {
		return err
	}
	lk, err := s.lockWrite(ctx, op, e)
	if err != nil {
		return err
	}
	defer s.unlockWrite(e, lk)
	w, err := s.readForWrite(ctx, op, e.path)
	if err != nil {
		return err
	}
	if w.curID == pending {
		// Promoted already: done, unless over another version than current.
		prev, _, pfi, err := s.readValueCompanion(previousPath(e.path, pending))
		if err != nil {
			return err
		}
		if pfi == nil || len(prev) == 0 || secrets.ContentVersion(prev) == current {
			return nil
		}
		return writeErr(op, e.path, secrets.ErrConflict, "promoted already, over another version")
	}
	switch {
	case w.pend == nil || w.pendID != pending:
		return writeErr(op, e.path, secrets.ErrNotFound, "no such pending version")
	case w.curID != current:
		return writeErr(op, e.path, secrets.ErrConflict, "current version is not the one expected")
	}
	// The copy keeps the file's bytes, which reads turn into the value as
	// they do the key's file's: the value rule is applied once.
	if err := s.writeAtomic(op, previousPath(e.path, pending), w.curRaw, w.fi, lk); err != nil {
		return err
	}
	if err := renameAtomic(op, pendingPath(e.path), e.path, lk); err != nil {
		return err
	}
	s.removePreviousCopies(e.path, pending)
	// Let this Source remember the promoted version as current, so that a
	// hand write after it finds it as the version it replaced.
	_, _ = s.fetchEntry(ctx, e, key)
	return nil
}

// removePreviousCopies removes the previous copies of every version but
// keep. Failures are let be: a stray copy is never read, since only the
// copy named after the current version counts.
func (s *Source) removePreviousCopies(path, keep string) {
	prefix := "." + filepath.Base(path) + companionInfix + "previous-"
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(prefix+"*")))
	for _, n := range names {
		if filepath.Base(n) != filepath.Base(previousPath(path, keep)) && strings.HasPrefix(filepath.Base(n), prefix) {
			os.Remove(n)
		}
	}
}

// Discard removes the pending file; see secrets.Stager.Discard.
func (s *Source) Discard(ctx context.Context, key, pending string) error {
	const op = "discard"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(pendingPath(e.path)); errors.Is(err, fs.ErrNotExist) {
		// Nothing pending: nothing to discard, whatever the layout. The
		// current version is never discarded, pending or not.
		if r, rerr := s.read(ctx, e.path); rerr == nil && secrets.ContentVersion(r.data) == pending {
			return writeErr(op, e.path, secrets.ErrConflict, "the version is current")
		}
		return nil
	}
	if _, err := s.writable(op, e.path); err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return err // before the lock, as Stage does; a missing key's pending file may go
	}
	lk, err := s.lockWrite(ctx, op, e)
	if err != nil {
		return err
	}
	defer s.unlockWrite(e, lk)
	w, err := s.readForWrite(ctx, op, e.path)
	switch {
	case errors.Is(err, secrets.ErrNotFound):
		w, err = writeState{}, nil // no current file: the pending one may go
		pend, _, pfi, perr := s.readValueCompanion(pendingPath(e.path))
		if perr != nil {
			return perr
		}
		if pfi != nil {
			w.pend, w.pendID = pend, secrets.ContentVersion(pend)
		}
	case err != nil:
		return err
	}
	switch {
	case w.curID != "" && w.curID == pending:
		return writeErr(op, e.path, secrets.ErrConflict, "the version is current")
	case w.pend == nil:
		return nil
	case w.pendID != pending:
		return writeErr(op, e.path, secrets.ErrConflict, "another version is pending")
	}
	return removeSynced(op, pendingPath(e.path), lk)
}

// RemovePrevious makes key have no previous version, for every process
// that reads it, restarted or not: it replaces the previous copy of the
// current version with an empty file, which Fetch reads as "no previous
// version" (an empty file is never a value). See secrets.PreviousRemover.
func (s *Source) RemovePrevious(ctx context.Context, key, previous string) error {
	const op = "remove previous"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %s %s: %w", op, quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return err
	}
	// What readers see now, including what this Source remembers of a file
	// never rotated.
	v, err := s.fetchEntry(ctx, e, key)
	if errors.Is(err, secrets.ErrNotFound) || (err == nil && v.Previous.IsZero()) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.writable(op, e.path); err != nil {
		return err
	}
	lk, err := s.lockWrite(ctx, op, e)
	if err != nil {
		return err
	}
	defer s.unlockWrite(e, lk)
	w, err := s.readForWrite(ctx, op, e.path)
	if err != nil {
		return err
	}
	v, err = s.fetchEntry(ctx, e, key)
	switch {
	case err != nil:
		return err
	case v.Previous.IsZero():
		return nil
	case v.Previous.Version() != previous || v.Current.Version() != w.curID:
		return writeErr(op, e.path, secrets.ErrConflict, "the previous version is not the one expected")
	}
	return s.writeAtomic(op, previousPath(e.path, w.curID), nil, w.fi, lk)
}

// fetchEntry reads e's file as Fetch does and returns its versions.
func (s *Source) fetchEntry(ctx context.Context, e *entry, key string) (secrets.Versions, error) {
	if err := e.lock(ctx); err != nil {
		return secrets.Versions{}, fmt.Errorf("file: fetch %s: %w", quote(key), err)
	}
	defer e.unlock()
	if err := s.update(ctx, e); err != nil {
		return secrets.Versions{}, err
	}
	return e.versions(key), nil
}
