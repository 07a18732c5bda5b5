// Package file is a secrets.Source that reads secrets from files: Kubernetes
// secret volumes and Secrets Store CSI driver mounts, Vault Agent templates,
// Docker secrets (/run/secrets/x) and plain files.
//
//	src, err := file.New(file.WithDir("/etc/app/secrets"))
//	...
//	store, err := secrets.New(nil, secrets.WithSource("file", src))
//	pw, err := store.Get(ctx, "file:///run/secrets/db_password")
//	key, err := store.Get(ctx, "file://api_key")                   // /etc/app/secrets/api_key
//	dsn, err := store.Get(ctx, "file:///run/secrets/app.json#dsn") // a field of a JSON file
//
// # Keys
//
// A key is an absolute path, as the Store passes it for
// "file:///run/secrets/db" ("/run/secrets/db"), or a name relative to the
// directory set with WithDir, as Kubernetes lays out a secret volume: with
// WithDir("/etc/app/secrets"), "file://db_password" reads
// /etc/app/secrets/db_password and "file://tls/key.pem" reads
// /etc/app/secrets/tls/key.pem. A relative key that climbs out of the
// directory ("../x") is refused with secrets.ErrInvalid, and so is any
// relative key when no directory is set. The check is lexical: symbolic links
// are followed wherever they point, since that is how Kubernetes and the CSI
// driver publish their files; whoever can write the directory decides what it
// holds. Absolute keys may name any file the process can read. Writes are
// stricter: a rotation never writes through a symbolic link (see
// "Rotation"), so it never leaves the directory of a relative key.
//
// The value is the file's content, byte for byte: a trailing newline is kept
// unless WithTrimNewline is given (text secrets written by editors and by
// `kubectl create secret --from-file` often end with one).
// A field of a JSON file is selected by the Store: "file:///x/app.json#field".
// An environment variable may hold the reference in place of the value
// (DB_PASSWORD=file:///run/secrets/db_password), read with Store.Getenv.
//
// # Versions
//
// The version id of a value is secrets.ContentVersion of the content (16 hex
// digits of a domain-separated SHA-256): equal content, equal id, so a file rewritten with the same bytes
// is no rotation, and every process that reads the file, replicas and
// restarts included, gives it the same id (jwtkeys uses the id as a token's
// kid). Like any digest, an id lets whoever sees it (in a log, a status, a
// change notice, a kid) test guesses of the value offline; the digest is
// domain-separated, so tables of plain SHA-256 digests do not apply, but a
// secret that is meant to be rotated should be random, not guessable.
//
// # Previous
//
// Files keep no history, so the Source does: for each path it remembers the
// last two distinct contents it has read, and Previous is the content the
// file held before the current one, as seen by this Source. Previous is zero
// until a change has been seen, and a new Source (after a restart, say) starts
// with none. A change that comes and goes between two reads is never seen.
// Driven by a Store with its watch, the Source reads a file soon after each
// change, so Previous is the value the Store served before the rotation.
//
// # Half-written files
//
// A value is never taken from a file caught in the middle of a write:
//
//   - An empty file fails with secrets.ErrInvalid, as does a file over the size
//     limit (WithMaxSize, 1 MiB by default), a directory or another
//     non-regular file, and a file named *.json whose content is not valid
//     JSON (a truncated JSON object or array never is).
//   - The open file is examined before and after it is read; if its size,
//     mode, modification time or change time moved, or the bytes read do not
//     match its size, the read fails with secrets.ErrTransient. A read is
//     tried three times before it fails.
//
// A Store that gets such an error keeps serving the last good value and
// retries. Writers that replace a file atomically (write a temporary file,
// then rename it over the old one), as kubelet, the CSI driver, Vault Agent
// and Docker do, are never caught half-way. A writer that truncates a file and
// rewrites it in place may still be read between two of its writes without
// any of these checks noticing; its next write then produces a watch event,
// and the value is read again.
//
// Errors wrap secrets.ErrNotFound (no such file), secrets.ErrPermission
// (EACCES, EPERM), secrets.ErrInvalid or secrets.ErrTransient (other I/O
// errors), and never hold any part of a file's content.
//
// # Change detection
//
// The Source is a secrets.ChangeDetector: FetchIfChanged compares the file's
// stat (device and inode, size, mode, modification and change times, as
// os.Stat reports them after following symbolic links) and its resolved path
// with what they were when the content was last read, and reads the file
// only when they moved. This sees the atomic swap of Kubernetes' "..data"
// symbolic link, after which the visible path resolves to a new file. A file
// changed less than two seconds before it was read might change again
// without its times moving (file systems keep coarse times), so such a file
// is read again and compared by digest until it has been quiet for longer.
//
// # Watch
//
// The Source is a secrets.Watcher. Watch (which a Store runs by itself) uses
// fsnotify to watch directories, not files, since a file replaced by rename
// or a swapped symbolic link leaves a watch on the old file behind. It
// watches the WithDir directory and, for every key fetched before or after
// Watch started, the directory holding the key's path and the one holding
// the file it resolves to, so a Kubernetes "..data" swap, a Vault Agent
// rename and an edit in place are all seen. Any event in a watched directory
// reports every fetched key at or below that directory as changed: a key's
// refresh costs a stat, so precision is not worth missing a layout that
// names its files differently. Keep secrets in directories of their own so
// that unrelated traffic does not cause needless checks.
//
// Watch reports a key as changed when it starts watching for it, since the
// file may have changed while nothing watched it. A directory that
// does not exist (yet) is not watched; Watch tries again on each resync and
// after each creation, removal or rename it sees, and reports the keys below
// the directory once it watches it. Every resync interval (WithResync, one
// minute by default) Watch also reports that anything may have changed, in
// case an event was lost; the Store then checks every key of the Source, at
// the cost of a stat each.
//
// # Rotation
//
// The Source is a secrets.Rotatable and a secrets.PreviousRemover: a
// rotation agent (package secrets/rotate, the examples/rotator command) can
// stage, promote and discard versions of a key and keep its rotation record.
// It keeps them in hidden files beside the key's file dir/name:
//
//	dir/.name.rotor-pending          the staged value, reported by Fetch as Versions.Pending
//	dir/.name.rotor-previous-<id>    the value that version <id> replaced
//	dir/.name.rotor-rotation         the rotation record (JSON: ids, steps, times; no value)
//	dir/.name.rotor-lock             a write lock, held for the milliseconds of one write
//	dir/.name.rotor-tmp-*            a write in progress
//
// The leading dot keeps them out of ls, of shell globs and of tools that
// take a directory's visible files for secrets; the Source itself never
// lists a directory (a key names one file), and refuses to write a key
// named like one of these files.
//
// Every write is made whole in a temporary file, synced, and renamed into
// place, and the directory synced: a reader sees a file before or after a
// write, never a part. Promote renames the pending file over the key's
// file, so readers never find the key missing or half-replaced. Every
// check-and-set (Stage, Promote, Discard, RemovePrevious, SaveRotation)
// runs under the key's write lock: a lock file made with O_EXCL, which works
// across processes and on NFS. A writer that dies leaves it behind; it
// expires after WithLockExpiry (30 seconds by default), when the next writer
// breaks it and removes the temporary files left with it.
//
// Previous versions survive restarts: Promote writes the value it replaces
// to ".name.rotor-previous-<id>", named after the version it is the previous
// of, and while that version is current Fetch reports the copy as Previous
// (in a restarted process too), in place of what the Source remembers.
// RemovePrevious empties the copy, so that no process reports a previous
// version any more. A file written by hand after a rotation has another
// version id, so no copy matches, and Previous is again what the Source has
// seen.
//
// Only a key that is a regular file of its own in a writable directory can
// be written. Stage, Promote and SaveRotation, and Discard and
// RemovePrevious when they have something to remove, refuse these with
// ErrNotWritable, before they create any file (a lock file included):
//
//   - a key whose file is a symbolic link (the visible names of a Kubernetes
//     secret volume or a Secrets Store CSI mount, which point through
//     "..data");
//   - a key with a symbolic link among the directories between the base and
//     its file, where the base is the WithDir directory for a file inside
//     it and the file system's root for any other: a nested key of a volume
//     ("tls/key.pem", published as the link tls -> ..data/tls), or a
//     directory linked to somewhere else (WithDir's dir/sub -> /elsewhere),
//     which a write would leave the directory for. Links in the WithDir path
//     itself are allowed; an absolute key must name its file by a path
//     without links (on Linux /var/run is often one; write /run instead);
//   - a key with a directory named "..*" (kubelet's "..data" and timestamped
//     directories) on its path, or below a directory, up to the root and
//     with links resolved as well as not, that holds a "..data" entry: a
//     file inside such a volume at any depth;
//   - a file on a read-only file system (a mounted Secret, a Docker secret).
//
// Their writer (kubelet, the CSI driver) would undo or fight the change, or
// the write would land outside the directory the Source was given; the
// rotation belongs where they copy from. Reads still follow links, as
// "Keys" says. Files written by Vault Agent or a deploy tool are regular
// files and can be written, as long as that tool does not write them too.
// For a key never rotated, reading costs two more stats (of files that do
// not exist) and nothing else changes.
package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Defaults of the Source's options.
const (
	// DefaultResync is how often Watch reports that anything may have changed.
	DefaultResync = time.Minute
	// DefaultMaxSize is the largest file the Source reads: 1 MiB.
	DefaultMaxSize = 1 << 20
)

// readAttempts is how many times a read caught by a concurrent change (or a
// path that vanished while a symbolic link was being swapped) is tried.
const readAttempts = 3

// racyWindow is how long after its last change a file may change again
// without its times moving: file systems record times with a granularity of
// up to two seconds (FAT; one second on ext3 and HFS+, a clock tick
// elsewhere). A stat taken within that window proves nothing.
const racyWindow = 2 * time.Second

// Source reads secrets from files. It is safe for concurrent use; create it
// with New.
type Source struct {
	dir     string // absolute; "" when WithDir was not given
	resync  time.Duration
	clock   secrets.Clock
	maxSize int64
	// trimNewline drops one line ending from each value (WithTrimNewline).
	trimNewline bool

	lockExpiry time.Duration
	owner      string // written in lock files: host and process

	// wallNow is the clock file times are compared with: the wall clock,
	// which file systems use, and not the injected one. Tests replace it.
	wallNow func() time.Time
	// testHookRead, when set, runs after a file's bytes are read and before
	// the file is examined again. Tests use it to change a file mid-read.
	testHookRead atomic.Pointer[func(path string)]
	// testHookCommit, when set, runs when a write holds its lock and has
	// written its temporary file, before it renames it into place. Tests
	// use it to stop a writer there, as a crash would.
	testHookCommit atomic.Pointer[func(dst string)]

	mu       sync.Mutex
	paths    map[string]*entry // by cleaned absolute path
	sessions map[*session]struct{}
}

// entry is what the Source knows of one path. Its content fields are guarded
// by sem, which serializes the reads of the path so that a slower, older read
// never overwrites a newer one; the fields the watch uses are guarded by
// Source.mu.
type entry struct {
	path string
	sem  chan struct{} // capacity 1
	wsem chan struct{} // capacity 1: held by this process's writer of path

	// Guarded by sem.
	cur, prev content
	stat      os.FileInfo // of the file cur was last read from; nil if none
	readAt    time.Time   // wall-clock time of that read
	rot       rotation    // the rotation's files beside it, as of that read

	// Guarded by Source.mu.
	keys     map[string]struct{} // the keys that named this path
	realDir  string              // the directory of path, symbolic links resolved; set by the watch
	resolved string              // path with symbolic links resolved at the last read; "" if none
}

// content is one value read from a file. The zero content is none.
type content struct {
	id    string
	value string
}

// An Option configures a Source.
type Option func(*config) error

type config struct {
	dir         string
	resync      time.Duration
	clock       secrets.Clock
	maxSize     int64
	lockExpiry  time.Duration
	trimNewline bool
}

// WithDir sets the directory in which relative keys are names, as in a
// Kubernetes secret volume: with WithDir("/etc/app/secrets"), the key
// "db_password" reads /etc/app/secrets/db_password. A relative dir is made
// absolute against the working directory when New is called. The directory
// need not exist yet. Without WithDir, relative keys are refused with
// secrets.ErrInvalid.
//
// Watch watches this directory itself as well as the directories of the keys
// fetched.
func WithDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("file: WithDir(\"\"): empty directory")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("file: WithDir(%s): %w", quote(dir), err)
		}
		c.dir = abs
		return nil
	}
}

// WithResync sets how often Watch reports that anything may have changed, in
// case a file system event was lost (default DefaultResync, one minute). Each
// resync costs the Store a stat per key of the Source. 0 disables it; a
// negative d is an error.
func WithResync(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("file: WithResync(%v): must not be negative", d)
		}
		c.resync = d
		return nil
	}
}

// WithClock sets the clock whose timers pace the resync (default
// secrets.SystemClock). Tests pass a fake clock. File times are always
// compared with the wall clock, which is the one file systems use.
func WithClock(clk secrets.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return errors.New("file: WithClock(nil)")
		}
		c.clock = clk
		return nil
	}
}

// WithMaxSize sets the size in bytes of the largest file the Source reads
// (default DefaultMaxSize, 1 MiB). A secret is small; a larger file is
// refused with secrets.ErrInvalid rather than read into memory. n must be
// positive.
func WithMaxSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("file: WithMaxSize(%d): must be positive", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithTrimNewline makes the Source drop one line ending ("\n" or "\r\n")
// from the end of each file's content: the value of a file written by an
// editor, by `echo`, or by a Kubernetes or Docker secret made from such a
// file is then the text without its final newline, which a password, an API
// key or a header value must not carry. Only one is dropped; a file that
// holds nothing else is empty, and refused as any empty file is. Without
// this option the content is served byte for byte. The version id is that of
// the value served, so a file rewritten with or without its newline is no
// rotation.
//
// The rule applies to every version, wherever it is read from: the key's
// file, a pending file and a previous copy (see "Rotation" in the package
// documentation). A value staged with a newline is served as Pending without
// it, under the id Stage returns, and keeps value and id once promoted. The
// files a rotation writes hold the bytes given, and the rule is applied when
// they are read, once. Since ids depend on the rule, every process that
// reads or rotates a key should be given the same setting.
func WithTrimNewline() Option {
	return func(c *config) error {
		c.trimNewline = true
		return nil
	}
}

// New returns a Source configured by opts. It does no I/O: files are read
// when they are fetched.
func New(opts ...Option) (*Source, error) {
	cfg := config{resync: DefaultResync, clock: secrets.SystemClock, maxSize: DefaultMaxSize, lockExpiry: DefaultLockExpiry}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	host, _ := os.Hostname()
	return &Source{
		dir:         cfg.dir,
		resync:      cfg.resync,
		clock:       cfg.clock,
		maxSize:     cfg.maxSize,
		trimNewline: cfg.trimNewline,
		lockExpiry:  cfg.lockExpiry,
		owner:       fmt.Sprintf("%s/%d", host, os.Getpid()),
		wallNow:     time.Now,
		paths:       map[string]*entry{},
		sessions:    map[*session]struct{}{},
	}, nil
}

// Fetch reads the file that key names and returns its content as the current
// version and, once the Source has seen the file change, the content before
// as the previous one. It waits for a read of the same path already under
// way, and fails with ctx's error when ctx ends first.
//
// The key is remembered, so that a running Watch watches its directory, even
// when the read fails: a key whose file does not exist yet is noticed when
// the file appears.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Versions{}, fmt.Errorf("file: fetch %s: %w", quote(key), err)
	}
	e, err := s.lookup(key)
	if err != nil {
		return secrets.Versions{}, err
	}
	if err := e.lock(ctx); err != nil {
		return secrets.Versions{}, fmt.Errorf("file: fetch %s: %w", quote(key), err)
	}
	defer e.unlock()
	if err := s.update(ctx, e); err != nil {
		return secrets.Versions{}, err
	}
	return e.versions(key), nil
}

// FetchIfChanged answers Unchanged when the file is, by its stat and resolved
// path, the one the current version was read from and the versions are those
// of req.Known; it reads the file when the stat moved, when the file was
// modified too recently for its stat to be trusted, or when the Source has
// not read it yet, and then answers Unchanged if the digests match Known. With
// a zero req.Known it fetches.
func (s *Source) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	if err := ctx.Err(); err != nil {
		return secrets.Result{Err: fmt.Errorf("file: fetch %s: %w", quote(req.Key), err)}
	}
	if req.Known.Current.IsZero() {
		v, err := s.Fetch(ctx, req.Key)
		return secrets.Result{Versions: v, Err: err}
	}
	e, err := s.lookup(req.Key)
	if err != nil {
		return secrets.Result{Err: err}
	}
	if err := e.lock(ctx); err != nil {
		return secrets.Result{Err: fmt.Errorf("file: fetch %s: %w", quote(req.Key), err)}
	}
	defer e.unlock()
	if !s.unmoved(e) {
		if err := s.update(ctx, e); err != nil {
			return secrets.Result{Err: err}
		}
	}
	v := e.versions(req.Key)
	if sameIDs(v, req.Known) {
		return secrets.Result{Unchanged: true}
	}
	return secrets.Result{Versions: v}
}

// lookup turns key into a path and returns the path's entry, registering the
// key with it.
func (s *Source) lookup(key string) (*entry, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.paths[path]
	if e == nil {
		e = &entry{path: path, sem: make(chan struct{}, 1), wsem: make(chan struct{}, 1), keys: map[string]struct{}{}}
		s.paths[path] = e
	}
	if _, ok := e.keys[key]; !ok {
		e.keys[key] = struct{}{}
		s.kickLocked()
	}
	return e, nil
}

// path returns the cleaned absolute path that key names.
func (s *Source) path(key string) (string, error) {
	switch {
	case key == "":
		return "", fmt.Errorf("file: key %s: %w: empty key", quote(key), secrets.ErrInvalid)
	case strings.IndexByte(key, 0) >= 0:
		return "", fmt.Errorf("file: key %s: %w: NUL byte in path", quote(key), secrets.ErrInvalid)
	case filepath.IsAbs(key):
		return filepath.Clean(key), nil
	case s.dir == "":
		return "", fmt.Errorf("file: key %s: %w: relative path and no directory set (WithDir)", quote(key), secrets.ErrInvalid)
	case !filepath.IsLocal(key):
		return "", fmt.Errorf("file: key %s: %w: path leaves the directory", quote(key), secrets.ErrInvalid)
	}
	return filepath.Join(s.dir, key), nil
}

func (e *entry) lock(ctx context.Context) error {
	select {
	case e.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case e.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) unlock() { <-e.sem }

// versions returns the entry's versions as Secrets under key. e.sem must be
// held.
func (e *entry) versions(key string) secrets.Versions {
	var v secrets.Versions
	if e.cur.id != "" {
		v.Current = secrets.NewSecretString(key, e.cur.id, e.cur.value)
	}
	prev := e.prev
	switch e.rot.prevState {
	case linkedValue:
		prev = e.rot.prev
	case linkedNone:
		prev = content{}
	}
	if prev.id != "" && prev.id != e.cur.id {
		v.Previous = secrets.NewSecretString(key, prev.id, prev.value)
	}
	if p := e.rot.pend; p.id != "" && p.id != e.cur.id {
		v.Pending = secrets.NewSecretString(key, p.id, p.value)
	}
	return v
}

// update reads e's file and records what it holds. e.sem must be held.
func (s *Source) update(ctx context.Context, e *entry) error {
	r, err := s.read(ctx, e.path)
	if err != nil {
		return err
	}
	id := secrets.ContentVersion(r.data)
	switch id {
	case e.cur.id:
	case e.prev.id:
		// Back to the content before: it becomes current again and the one
		// it replaces becomes the previous one.
		e.cur, e.prev = e.prev, e.cur
	default:
		if e.cur.id != "" {
			e.prev = e.cur
		}
		e.cur = content{id: id, value: string(r.data)}
	}
	e.stat, e.readAt = r.stat, r.at
	e.rot = s.readRotation(e.path, id)

	s.mu.Lock()
	if r.resolved != e.resolved {
		old := e.resolved
		e.resolved = r.resolved
		if old == "" || filepath.Dir(old) != filepath.Dir(r.resolved) {
			s.kickLocked()
		}
	}
	s.mu.Unlock()
	return nil
}

// unmoved reports whether e's file is still the one its current content was
// read from, judged by a stat and the resolved path. It returns false, and
// the caller reads the file, whenever it cannot tell. e.sem must be held.
func (s *Source) unmoved(e *entry) bool {
	if e.stat == nil || e.cur.id == "" {
		return false
	}
	// A file modified within racyWindow of the read may have changed since
	// without its stat moving: trust the stat only for quiet files.
	if e.readAt.Sub(lastChange(e.stat)) < racyWindow {
		return false
	}
	fi, err := os.Stat(e.path)
	if err != nil {
		return false // let the read report the error, after its retries
	}
	resolved, err := filepath.EvalSymlinks(e.path)
	if err != nil {
		return false
	}
	s.mu.Lock()
	known := e.resolved
	s.mu.Unlock()
	return resolved == known && sameStat(fi, e.stat) && s.rotationUnmoved(e)
}

// sameIDs reports whether a and b hold the same version ids.
func sameIDs(a, b secrets.Versions) bool {
	return a.Current.Version() == b.Current.Version() &&
		a.Previous.Version() == b.Previous.Version() &&
		a.Pending.Version() == b.Pending.Version() &&
		a.Current.IsZero() == b.Current.IsZero() &&
		a.Previous.IsZero() == b.Previous.IsZero() &&
		a.Pending.IsZero() == b.Pending.IsZero()
}

// quote quotes a key or path for an error message, cut to a bounded length
// and on one line (see keyquote.Quote). Keys and paths are names, never
// values.
func quote(s string) string { return keyquote.Quote(s) }
