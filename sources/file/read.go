package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// readResult is one consistent read of a file.
type readResult struct {
	data     []byte      // the value: the file's bytes under the value rule (see Source.value)
	raw      []byte      // the file's bytes as they are
	stat     os.FileInfo // of the open file, after the read
	at       time.Time   // wall-clock time before the read began
	resolved string      // the path with symbolic links resolved; "" if that failed
}

// read reads the file at path, refusing a file that is empty, too large, not
// a regular file, caught changing while it was read, or (for *.json) not
// valid JSON. A read that fails because the file changed or vanished, as it
// may for an instant while a symbolic link is swapped, is tried again, up to
// readAttempts times in all.
func (s *Source) read(ctx context.Context, path string) (readResult, error) {
	var err error
	for range readAttempts {
		if cerr := ctx.Err(); cerr != nil {
			return readResult{}, fmt.Errorf("file: read %s: %w", quote(path), cerr)
		}
		var r readResult
		r, err = s.readOnce(path)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, secrets.ErrTransient) && !errors.Is(err, secrets.ErrNotFound) {
			break
		}
	}
	return readResult{}, err
}

func (s *Source) readOnce(path string) (readResult, error) {
	at := s.wallNow()
	// Stat before opening: opening a named pipe would block until a writer
	// comes along.
	fi, err := os.Stat(path)
	if err != nil {
		return readResult{}, ioError(path, err)
	}
	if err := s.checkFile(path, fi); err != nil {
		return readResult{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return readResult{}, ioError(path, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return readResult{}, ioError(path, err)
	}
	if err := s.checkFile(path, before); err != nil {
		return readResult{}, err
	}
	// Read one byte past the limit, so that a file that grew since the stat
	// is caught rather than cut.
	limit := s.maxSize
	if limit < math.MaxInt64 {
		limit++
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return readResult{}, ioError(path, err)
	}
	if hook := s.testHookRead.Load(); hook != nil {
		(*hook)(path)
	}
	after, err := f.Stat()
	if err != nil {
		return readResult{}, ioError(path, err)
	}
	// The file we hold open moved under us (an in-place rewrite, a truncation,
	// an append), or what we read is not what it holds: a half-written value.
	if !sameStat(before, after) || int64(len(data)) != after.Size() {
		return readResult{}, failf(secrets.ErrTransient, path, "file changed while it was read")
	}
	raw := data
	data = s.value(raw)
	if len(data) == 0 {
		return readResult{}, failf(secrets.ErrInvalid, path, "file is empty")
	}
	if strings.EqualFold(filepath.Ext(path), ".json") && !json.Valid(data) {
		// json.Valid reports no detail, so nothing of the content can leak.
		return readResult{}, failf(secrets.ErrInvalid, path, "content of a .json file is not valid JSON (half-written?)")
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		resolved = "" // swapped away already: the next check reads again
	}
	return readResult{data: data, raw: raw, stat: after, at: at, resolved: resolved}, nil
}

// value applies the Source's value rule to the bytes of a file that holds
// a value (the key's file, its pending file, a previous copy): with
// WithTrimNewline one line ending is dropped, otherwise the bytes are the
// value. Every read of a value goes through it, so that a version has one
// value and one id wherever it is read from. The result may share raw's
// memory.
func (s *Source) value(raw []byte) []byte {
	if s.trimNewline {
		return trimNewline(raw)
	}
	return raw
}

// trimNewline drops one line ending ("\n" or "\r\n") from the end of data.
func trimNewline(data []byte) []byte {
	if n := len(data); n > 0 && data[n-1] == '\n' {
		data = data[:n-1]
		if n := len(data); n > 0 && data[n-1] == '\r' {
			data = data[:n-1]
		}
	}
	return data
}

// checkFile refuses what is not a regular file of at most maxSize bytes.
func (s *Source) checkFile(path string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return failf(secrets.ErrInvalid, path, "is a directory")
	case !fi.Mode().IsRegular():
		return failf(secrets.ErrInvalid, path, "not a regular file")
	case fi.Size() > s.maxSize:
		return failf(secrets.ErrInvalid, path, fmt.Sprintf("file is larger than the limit of %d bytes", s.maxSize))
	}
	return nil
}

// sameStat reports whether a and b describe the same file in the same state:
// the same device and inode, size, mode, modification time and, where the
// system reports it, change time. A writer can set a file's modification
// time back (cp -p, touch -r), not its change time.
func sameStat(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.Mode() == b.Mode() &&
		a.ModTime().Equal(b.ModTime()) && changeTime(a).Equal(changeTime(b))
}

// lastChange returns the later of fi's modification and change times.
func lastChange(fi os.FileInfo) time.Time {
	if c := changeTime(fi); c.After(fi.ModTime()) {
		return c
	}
	return fi.ModTime()
}

// ioError wraps an error of the os package with its class. Such errors name
// the path and the system call, never the content; the path is quoted once,
// bounded, and the cause printed without it (see osError).
func ioError(path string, err error) error {
	return fmt.Errorf("file: read %s: %w: %w", quote(path), classify(err), &osError{err})
}

// osError prints an error of the os package or of fsnotify without the path
// it holds, which the message around it already quotes and which may be of
// any length or hold a newline; anything else it prints on one bounded line.
// The error itself stays in the chain, for errors.Is (fs.ErrNotExist) and
// errors.As (*fs.PathError).
type osError struct{ err error }

func (e *osError) Error() string {
	var pe *fs.PathError
	if errors.As(e.err, &pe) && pe.Err != nil {
		return keyquote.Line(pe.Op+": "+pe.Err.Error(), keyquote.Max)
	}
	return keyquote.Line(e.err.Error(), keyquote.Max)
}

func (e *osError) Unwrap() error { return e.err }

// failf returns an error of class about the file at path. msg must not hold
// any part of the content.
func failf(class error, path, msg string) error {
	return fmt.Errorf("file: read %s: %w: %s", quote(path), class, msg)
}

// classify maps an error of the os package to the sentinel of its class:
// a missing file (or a path through something that is not a directory) is
// ErrNotFound; EACCES and EPERM are ErrPermission; a path that cannot be
// resolved (a symbolic link loop, a name too long) is ErrInvalid; anything
// else (EIO, ESTALE, EMFILE, ...) is ErrTransient, worth trying again later.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return secrets.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return secrets.ErrPermission
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EISDIR):
		return secrets.ErrInvalid
	}
	return secrets.ErrTransient
}
