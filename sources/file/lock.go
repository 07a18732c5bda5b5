package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// DefaultLockExpiry is how long a write lock left by a writer that died
// keeps other writers out: 30 seconds. A write holds its lock for the few
// milliseconds that writing and syncing a small file take.
const DefaultLockExpiry = 30 * time.Second

// lockPollMax bounds the pause between two attempts to take a lock that
// another writer holds. Locks are held for milliseconds, so the wait is
// short; it is real time, not the Source's clock, whose only role here is to
// say when a lock has expired.
const lockPollMax = 50 * time.Millisecond

// WithLockExpiry sets how long a write lock file (".name.rotor-lock") left
// behind by a writer that died keeps other writers out (default
// DefaultLockExpiry). After it, the next writer breaks the lock. It must be
// far longer than a write takes: a writer stalled past it (a stopped
// process, a hung disk) may find its lock taken, and then stops without
// writing further (its write fails with secrets.ErrTransient). d must be
// positive.
func WithLockExpiry(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("file: WithLockExpiry(%v): must be positive", d)
		}
		c.lockExpiry = d
		return nil
	}
}

// A fileLock is a held write lock of one key's file: the lock file, created
// with O_EXCL, holding a token that only its holder knows.
type fileLock struct {
	key   string // the key's file
	path  string // the lock file
	token string
}

// lockInfo is a lock file's content.
type lockInfo struct {
	Owner   string    `json:"owner"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// lockWrite takes the write lock of the file at path: first the entry's, so
// that writers in this process queue in order, then the lock file, which
// keeps out writers in other processes. It waits while another writer holds
// it, breaks a lock whose holder let it expire, and removes what a writer
// that died under the lock left behind. Release it with unlockWrite.
func (s *Source) lockWrite(ctx context.Context, op string, e *entry) (*fileLock, error) {
	select {
	case e.wsem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("file: %s %s: %w", op, quote(e.path), ctx.Err())
	}
	lk, err := s.lockFile(ctx, op, e.path)
	if err != nil {
		<-e.wsem
		return nil, err
	}
	return lk, nil
}

func (s *Source) unlockWrite(e *entry, lk *fileLock) {
	lk.release()
	<-e.wsem
}

func (s *Source) lockFile(ctx context.Context, op, path string) (*fileLock, error) {
	lp := lockPath(path)
	pause := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("file: %s %s: %w", op, quote(path), err)
		}
		lk, err := s.tryLock(path, lp)
		if err == nil {
			cleanLeftovers(path)
			return lk, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, writeIOErr(op, path, err)
		}
		if s.breakIfStale(lp) {
			continue
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("file: %s %s: waiting for another writer's lock: %w", op, quote(path), ctx.Err())
		}
		pause = min(2*pause, lockPollMax)
	}
}

// tryLock creates the lock file lp, failing with fs.ErrExist when it exists.
func (s *Source) tryLock(path, lp string) (*fileLock, error) {
	f, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	lk := &fileLock{key: path, path: lp, token: randomHex(16)}
	b, _ := json.Marshal(lockInfo{Owner: s.owner, Token: lk.token, Expires: s.clock.Now().Add(s.lockExpiry)})
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(lp)
		return nil, err
	}
	return lk, nil
}

// breakIfStale breaks the lock file lp when its holder let it expire, and
// reports whether the caller should try to take the lock at once (it was
// broken, or is gone). A lock file whose content cannot be read (its writer
// died between creating it and writing it) expires lockExpiry after it was
// made.
//
// Breaking moves the lock aside under a name of its own and checks that
// what it moved is the lock it judged expired; if another writer had broken
// that one and taken the lock meanwhile, it puts that writer's lock back
// (link(2) fails rather than replace a lock taken since).
func (s *Source) breakIfStale(lp string) bool {
	info, fi, err := readLock(lp)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	expires := fi.ModTime().Add(s.lockExpiry)
	if !info.Expires.IsZero() {
		expires = info.Expires
	}
	if s.clock.Now().Before(expires) {
		return false
	}
	aside := companion(filepath.Join(filepath.Dir(lp), keyOfLock(lp)), "lock-stale-"+randomHex(8))
	if err := os.Rename(lp, aside); err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	moved, err := os.Stat(aside)
	if err != nil || !os.SameFile(moved, fi) {
		_ = os.Link(aside, lp)
	}
	os.Remove(aside)
	return true
}

// keyOfLock returns the base name of the key's file whose lock file is lp.
func keyOfLock(lp string) string {
	base := filepath.Base(lp)
	return base[1 : len(base)-len(companionInfix+"lock")]
}

// readLock reads a lock file and its stat from one open file. A lock file
// that does not parse is returned with a zero lockInfo and no error.
func readLock(lp string) (lockInfo, os.FileInfo, error) {
	f, err := os.Open(lp)
	if err != nil {
		return lockInfo{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return lockInfo{}, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return lockInfo{}, nil, err
	}
	var info lockInfo
	if json.Unmarshal(b, &info) != nil {
		info = lockInfo{}
	}
	return info, fi, nil
}

// check reports whether l is still held: its lock file holds its token.
// Writers call it before each rename that commits a change.
func (l *fileLock) check() error {
	info, _, err := readLock(l.path)
	if err != nil || info.Token != l.token {
		return writeErr("write", l.key, secrets.ErrTransient, "the write lock expired and another writer took it; this write stopped")
	}
	return nil
}

// release removes the lock file if it is still l's.
func (l *fileLock) release() {
	if l.check() == nil {
		os.Remove(l.path)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
