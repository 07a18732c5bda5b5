package file

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// rotation is what a read found of a rotation's files beside a key's file
// (see write.go for their names): the pending value, and the copy of the
// value the current one replaced.
type rotation struct {
	pend     content     // zero when nothing is pending
	pendStat os.FileInfo // nil when the pending file does not exist

	// prevState says whether the previous version comes from the copy
	// beside the file (linkedValue), is none because it was removed
	// (linkedNone: the copy is empty), or, with no copy at all, is what this
	// Source remembers (unlinked: a file never rotated, or written by hand
	// since).
	prevState linkState
	prev      content
	prevStat  os.FileInfo // nil when the copy does not exist
}

type linkState uint8

const (
	unlinked linkState = iota
	linkedValue
	linkedNone
)

// readRotation reads the rotation's files beside path, whose current
// content has version id cur. A pending file that cannot be read, or that
// does not hold a value the key's file could (valid JSON for *.json), is no
// pending version; a previous copy that cannot be read is no previous
// version: neither is ever allowed to fail the read of the current one.
func (s *Source) readRotation(path, cur string) rotation {
	var r rotation
	data, _, fi, err := s.readValueCompanion(pendingPath(path))
	r.pendStat = fi
	if err == nil && fi != nil && s.valueOK(path, data) {
		r.pend = content{id: secrets.ContentVersion(data), value: string(data)}
	}
	data, _, fi, err = s.readValueCompanion(previousPath(path, cur))
	r.prevStat = fi
	switch {
	case fi == nil && err == nil:
		r.prevState = unlinked
	case err == nil && len(data) > 0:
		r.prevState = linkedValue
		r.prev = content{id: secrets.ContentVersion(data), value: string(data)}
	default:
		r.prevState = linkedNone
	}
	return r
}

// valueOK reports whether data could be the value of the file at path:
// not empty, and valid JSON if the file is named *.json.
func (s *Source) valueOK(path string, data []byte) bool {
	if len(data) == 0 || int64(len(data)) > s.maxSize {
		return false
	}
	return !isJSONPath(path) || json.Valid(data)
}

func isJSONPath(path string) bool { return strings.EqualFold(filepath.Ext(path), ".json") }

// rotationUnmoved reports whether the rotation's files beside e's file are
// as e.rot found them, judged by their stats. e.sem must be held.
func (s *Source) rotationUnmoved(e *entry) bool {
	return companionUnmoved(pendingPath(e.path), e.rot.pendStat, e.readAt) &&
		companionUnmoved(previousPath(e.path, e.cur.id), e.rot.prevStat, e.readAt)
}

func companionUnmoved(path string, known os.FileInfo, readAt time.Time) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return known == nil && errors.Is(err, fs.ErrNotExist)
	}
	return known != nil && readAt.Sub(lastChange(known)) >= racyWindow && sameStat(fi, known)
}

// readValueCompanion reads a rotation's file that holds a value (the
// pending file, a previous copy) as readCompanion does, and returns its
// value under the value rule that reads of the key's file apply (see
// Source.value) as well as its bytes as they are (raw): a pending version is
// served, and has the id, of what it will be served as once it is promoted.
func (s *Source) readValueCompanion(path string) (value, raw []byte, fi os.FileInfo, err error) {
	raw, fi, err = s.readCompanion(path)
	if err != nil || fi == nil {
		return nil, nil, fi, err
	}
	return s.value(raw), raw, fi, nil
}

// readCompanion reads one of a rotation's files: (nil, nil, nil) when it
// does not exist. They are replaced by rename only, so a read that sees the
// file move under it reads again.
func (s *Source) readCompanion(path string) ([]byte, os.FileInfo, error) {
	for range readAttempts {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, ioError(path, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fi, failf(secrets.ErrInvalid, path, "not a regular file")
		}
		if fi.Size() > s.maxSize {
			return nil, fi, failf(secrets.ErrInvalid, path, "file is larger than the limit")
		}
		data, after, err := readOpen(path, s.maxSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue // replaced between the stat and the open
		}
		if err != nil {
			return nil, fi, ioError(path, err)
		}
		if after != nil && sameStat(fi, after) && int64(len(data)) == after.Size() {
			return data, after, nil
		}
	}
	return nil, nil, failf(secrets.ErrTransient, path, "file changed while it was read")
}

// readOpen reads at most limit+1 bytes of the file at path and returns its
// stat after the read, nil when it moved during the read.
func readOpen(path string, limit int64) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	after, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !sameStat(before, after) {
		return data, nil, nil
	}
	return data, after, nil
}
