package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rotorhq/rotor/secrets"
)

// ErrNotWritable: the key's file is laid out in a way the Source must not or
// cannot write: a symbolic link (a Kubernetes or CSI secret volume, whose
// "..data" link its writer swaps), a file reached through a symbolic link to
// a directory (a nested key of such a volume, or a link out of the WithDir
// directory), a file inside such a volume at any depth, or a file on a
// read-only file system (a mounted Secret, a Docker secret); see "Rotation"
// in the package documentation for the exact rule. Errors that wrap it wrap
// secrets.ErrPermission too. Rotate such a secret where it comes from (the
// Kubernetes API, the CSI provider's backend) instead, or name the file by
// a path without links.
var ErrNotWritable = errors.New("the file's layout cannot be written")

// The files a rotation keeps beside a key's file, at dir/name:
//
//	dir/.name.rotor-pending          the staged value (Versions.Pending)
//	dir/.name.rotor-previous-<id>    the value that version <id> replaced
//	dir/.name.rotor-rotation         the rotation record (JSON, no value)
//	dir/.name.rotor-lock             held during each write (O_EXCL)
//	dir/.name.rotor-tmp-*            a write in progress
//
// They are hidden (a leading dot, as kubelet hides "..data"), so that ls, a
// shell glob and tools that mount or copy a directory's visible files do
// not take them for secrets.
const companionInfix = ".rotor-"

func companion(path, kind string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+companionInfix+kind)
}

func pendingPath(path string) string { return companion(path, "pending") }
func recordPath(path string) string  { return companion(path, "rotation") }
func lockPath(path string) string    { return companion(path, "lock") }
func tmpPattern(path string) string  { return "." + filepath.Base(path) + companionInfix + "tmp-*" }
func stalePattern(path string) string {
	return "." + filepath.Base(path) + companionInfix + "lock-stale-*"
}

// previousPath names the copy of the value that version id replaced: the
// previous version while id is current.
func previousPath(path, id string) string { return companion(path, "previous-"+id) }

// isCompanion reports whether base is the name of a rotation's file.
func isCompanion(base string) bool {
	return strings.HasPrefix(base, ".") && strings.Contains(base, companionInfix)
}

// writeErr returns an error of class about a write to path. msg must hold no
// part of a value.
func writeErr(op, path string, class error, msg string) error {
	return fmt.Errorf("file: %s %s: %w: %s", op, quote(path), class, msg)
}

// notWritable returns an ErrNotWritable error about path.
func notWritable(op, path, why string) error {
	return fmt.Errorf("file: %s %s: %w (%w): %s", op, quote(path), ErrNotWritable, secrets.ErrPermission, why)
}

// writeIOErr wraps an error of the os package met while writing: a
// read-only file system is ErrNotWritable, the rest is classified as reads
// are.
func writeIOErr(op, path string, err error) error {
	if errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("file: %s %s: %w (%w): read-only file system: %w", op, quote(path), ErrNotWritable, secrets.ErrPermission, &osError{err})
	}
	return fmt.Errorf("file: %s %s: %w: %w", op, quote(path), classify(err), &osError{err})
}

// writable checks that the file at path is one the Source may replace, and
// returns its FileInfo. A write never follows a symbolic link and never
// writes into a volume that another writer owns:
//
//   - The file is a regular file, not a symbolic link, and not named as a
//     rotation's own file (that is secrets.ErrInvalid).
//   - No component of the path between its base and the file is a symbolic
//     link or a directory whose name starts with ".." (kubelet's "..data"
//     and timestamped directories). The base is the WithDir directory for a
//     path inside it, the file system's root for any other: symbolic links
//     in the WithDir path itself are the operator's choice, those below it
//     belong to whatever published them (a nested Kubernetes key "tls/key.pem"
//     is published as the link tls -> ..data/tls), and a write through them
//     would land outside the directory or in another writer's files.
//   - No directory above the file, as named and with symbolic links
//     resolved, up to the file system's root, has a name starting with ".."
//     or holds a "..data" entry: the file is not inside a Kubernetes-style
//     volume, however deep, nor reached through one.
//
// Layouts refused fail with ErrNotWritable; a path that does not exist
// fails with secrets.ErrNotFound. The checks are made before a write takes
// its lock and again under it; whoever can change the directories between
// the two is trusted, as for reads.
func (s *Source) writable(op, path string) (os.FileInfo, error) {
	if isCompanion(filepath.Base(path)) {
		return nil, writeErr(op, path, secrets.ErrInvalid, "the name is that of a rotation's own file")
	}
	base := s.writeBase(path)
	rel, err := filepath.Rel(base, path)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, writeErr(op, path, secrets.ErrInvalid, "the path cannot be resolved against its directory")
	}
	parts := strings.Split(rel, string(filepath.Separator))
	var fi os.FileInfo
	at := base
	for i, name := range parts {
		at = filepath.Join(at, name)
		last := i == len(parts)-1
		if !last && strings.HasPrefix(name, "..") {
			return nil, notWritable(op, path, "inside a Kubernetes-style volume's hidden directory, which its writer replaces")
		}
		fi, err = os.Lstat(at)
		if err != nil {
			return nil, writeIOErr(op, path, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if last {
				return nil, notWritable(op, path, "a symbolic link (a Kubernetes or CSI volume, say), whose target its writer owns")
			}
			return nil, notWritable(op, path, "a directory on the path is a symbolic link (a nested key of a Kubernetes or CSI volume, say), which a write does not follow")
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, writeErr(op, path, secrets.ErrInvalid, "not a regular file")
	}
	dir := filepath.Dir(path)
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, writeIOErr(op, path, err)
	}
	for _, d := range []string{dir, resolved} {
		if why := inVolume(d); why != "" {
			return nil, notWritable(op, path, why)
		}
		if resolved == dir {
			break
		}
	}
	return fi, nil
}

// writeBase returns the directory below which a write to path checks each
// component: the WithDir directory when path is inside it, else the root.
func (s *Source) writeBase(path string) string {
	if s.dir != "" {
		if rel, err := filepath.Rel(s.dir, path); err == nil && rel != "." && filepath.IsLocal(rel) {
			return s.dir
		}
	}
	return filepath.VolumeName(path) + string(filepath.Separator)
}

// inVolume says why the directory dir, or one above it, is part of a
// Kubernetes-style volume: a name starting with ".." (kubelet's hidden
// directories) or a "..data" entry. It returns "" when neither is found.
func inVolume(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "..") {
			return "inside a Kubernetes-style volume's hidden directory, which its writer replaces"
		}
		if _, err := os.Lstat(filepath.Join(d, "..data")); err == nil {
			return "in a Kubernetes-style volume (a directory above it has a ..data entry)"
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// writeAtomic replaces dst with data: a temporary file in dst's directory,
// given like's mode and owner (0600 and the process's when like is nil),
// written, synced, checked to still hold lk, renamed over dst, and the
// directory synced. Readers see the old file or the new one, never a part.
func (s *Source) writeAtomic(op, dst string, data []byte, like os.FileInfo, lk *fileLock) error {
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, tmpPattern(lk.key))
	if err != nil {
		return writeIOErr(op, dst, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	mode := fs.FileMode(0o600)
	if like != nil {
		mode = like.Mode().Perm()
	}
	if err := f.Chmod(mode); err != nil {
		return fail(writeIOErr(op, dst, err))
	}
	if like != nil {
		if err := sameOwner(f, like); err != nil {
			return fail(writeErr(op, dst, secrets.ErrPermission, "cannot give the new file the owner of the current one, whose readers might lose access"))
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(writeIOErr(op, dst, err))
	}
	if err := f.Sync(); err != nil {
		return fail(writeIOErr(op, dst, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return writeIOErr(op, dst, err)
	}
	if hook := s.testHookCommit.Load(); hook != nil {
		(*hook)(dst)
	}
	if err := lk.check(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return writeIOErr(op, dst, err)
	}
	return syncDir(op, dir)
}

// renameAtomic renames src over dst, under lk, and syncs the directory.
func renameAtomic(op, src, dst string, lk *fileLock) error {
	if err := lk.check(); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return writeIOErr(op, dst, err)
	}
	return syncDir(op, filepath.Dir(dst))
}

// removeSynced removes path (absent is fine) and syncs its directory.
func removeSynced(op, path string, lk *fileLock) error {
	if err := lk.check(); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return writeIOErr(op, path, err)
	}
	return syncDir(op, filepath.Dir(path))
}

// syncDir makes a rename or removal in dir durable. File systems that
// cannot sync a directory (EINVAL) are let be.
func syncDir(op, dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return writeIOErr(op, dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return writeIOErr(op, dir, err)
	}
	return nil
}

// sameOwner gives f the owner and group of like when they differ from its
// own, which only a privileged process may do.
func sameOwner(f *os.File, like os.FileInfo) error {
	want, ok := like.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	got, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (got.Uid == want.Uid && got.Gid == want.Gid) {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}

// cleanLeftovers removes what a writer that died under the lock of path
// left behind: temporary files and lock files moved aside to be broken.
// Only the lock's holder calls it, so none of them is in use.
func cleanLeftovers(path string) {
	dir := filepath.Dir(path)
	for _, pat := range []string{tmpPattern(path), stalePattern(path)} {
		names, _ := filepath.Glob(filepath.Join(dir, globEscape(pat)))
		for _, n := range names {
			os.Remove(n)
		}
	}
}

// globEscape escapes the glob metacharacters of a pattern built from a file
// name, keeping the final "*".
func globEscape(pat string) string {
	body := strings.TrimSuffix(pat, "*")
	var b strings.Builder
	for _, r := range body {
		switch r {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}
