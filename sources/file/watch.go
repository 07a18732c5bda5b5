package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/rotorhq/rotor/secrets"
)

// maxBatch bounds how many queued events one round of the watch takes before
// it reports the keys they touch.
const maxBatch = 256

// session is one running Watch, as the Source sees it.
type session struct {
	kick chan struct{} // capacity 1: a key or a key's directory is new
}

// kickLocked tells every running Watch that the set of directories to watch
// may have changed. s.mu must be held.
func (s *Source) kickLocked() {
	for ses := range s.sessions {
		select {
		case ses.kick <- struct{}{}:
		default:
		}
	}
}

// Watch watches, with fsnotify, the WithDir directory and the directories of
// every key fetched before or after it started (see the package
// documentation), and calls changed with a key whenever an event in one of
// those directories may have changed that key's file. Every resync interval,
// and when the event queue overflowed, it calls changed(""): anything may
// have changed. Events that arrive together are reported once per key. Each
// key is also reported once when Watch starts covering it (right after Watch
// starts for a key fetched before, soon after the Fetch for a key fetched
// later, once its directory exists for a key whose directory did not): the
// file may have changed while nothing watched it. changed is called from
// Watch's own goroutine, one call at a time; it must not block, as the
// Store's does not.
//
// Several Watch calls may run at once on one Source (two Stores sharing it,
// say); each gets every notice. Watch returns nil when ctx ends, having
// closed its fsnotify watcher, and leaves no goroutine behind. It returns an
// error early if fsnotify cannot start (inotify limits, for one) or fails;
// a Store then goes on polling.
func (s *Source) Watch(ctx context.Context, changed func(key string)) error {
	if changed == nil {
		return errors.New("file: Watch: nil callback")
	}
	if ctx.Err() != nil {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file: watch: %w", &osError{err})
	}
	defer fw.Close()

	ses := &session{kick: make(chan struct{}, 1)}
	s.mu.Lock()
	s.sessions[ses] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ses)
		s.mu.Unlock()
	}()

	var tick <-chan time.Time
	var timer secrets.Timer
	if s.resync > 0 {
		timer = s.clock.NewTimer(s.resync)
		defer timer.Stop()
		tick = timer.C()
	}

	wt := &watch{s: s, fw: fw, changed: changed, watched: map[string]os.FileInfo{}, reported: map[string]bool{}}
	wt.sync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ses.kick:
			wt.sync()
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("file: watch: fsnotify stopped")
			}
			wt.handle(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("file: watch: fsnotify stopped")
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("file: watch: %w", &osError{err})
			}
			// Events were lost: anything may have changed.
			changed("")
			wt.sync()
		case <-tick:
			changed("")
			wt.sync()
			timer.Reset(s.resync)
		}
	}
}

// watch is the state of one running Watch. Only its goroutine uses it.
type watch struct {
	s        *Source
	fw       *fsnotify.Watcher
	changed  func(key string)
	watched  map[string]os.FileInfo // directories watched → their identity when added
	reported map[string]bool        // keys reported since their directory was first watched
}

// handle reports the keys that ev, and the events queued behind it, may have
// changed.
func (wt *watch) handle(ev fsnotify.Event) {
	dirs := map[string]bool{}
	structural := false
	take := func(ev fsnotify.Event) {
		// The directory the event happened in. For an event on a watched
		// directory itself (removed, renamed) this is the directory above,
		// which covers every key below it.
		dirs[filepath.Dir(ev.Name)] = true
		if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			structural = true
		}
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			// A watched directory went away, as the event on it or on its
			// entry in the watched directory above says. Forget its watch
			// now: a directory made again in its place may reuse its inode
			// number, so the next sync could not tell it from the old one.
			if _, ok := wt.watched[ev.Name]; ok {
				_ = wt.fw.Remove(ev.Name)
				delete(wt.watched, ev.Name)
			}
		}
	}
	take(ev)
drain:
	for range maxBatch {
		select {
		case ev, ok := <-wt.fw.Events:
			if !ok {
				break drain // Watch's loop sees the closed channel next
			}
			take(ev)
		default:
			break drain
		}
	}
	if structural {
		// A directory may have come, gone or been replaced.
		wt.sync()
	}
	for _, k := range wt.s.keysUnder(dirs) {
		wt.changed(k)
	}
}

// sync makes the set of watched directories what it should be: the WithDir
// directory and, for every key, the directory of its path and that of the
// file it resolves to, all with symbolic links resolved (a directory is
// watched under one name only). It drops directories no longer wanted or no
// longer the ones that were watched (removed, replaced), and adds the wanted
// ones that exist. Then it reports as changed the keys below newly added
// directories and the keys whose directory is watched for the first time
// since they were fetched, since nothing watched them until now.
func (wt *watch) sync() {
	s := wt.s
	type item struct {
		e              *entry
		path, resolved string
	}
	s.mu.Lock()
	items := make([]item, 0, len(s.paths))
	for _, e := range s.paths {
		items = append(items, item{e, e.path, e.resolved})
	}
	s.mu.Unlock()

	want := map[string]bool{}
	if s.dir != "" {
		want[canonical(s.dir)] = true
	}
	reals := make([]string, len(items))
	for i, it := range items {
		reals[i] = canonical(filepath.Dir(it.path))
		want[reals[i]] = true
		if it.resolved != "" {
			want[filepath.Dir(it.resolved)] = true
		}
	}
	s.mu.Lock()
	for i, it := range items {
		it.e.realDir = reals[i]
	}
	s.mu.Unlock()

	// fsnotify forgets a watch whose directory was removed or moved; a
	// directory removed and made again may even have its old inode number,
	// so both the list and the identity are checked.
	active := map[string]bool{}
	for _, d := range wt.fw.WatchList() {
		active[d] = true
	}
	for d, fi := range wt.watched {
		cur, err := os.Stat(d)
		if want[d] && active[d] && err == nil && os.SameFile(cur, fi) {
			continue
		}
		_ = wt.fw.Remove(d) // fails harmlessly when the kernel dropped it already
		delete(wt.watched, d)
	}
	added := map[string]bool{}
	for d := range want {
		if _, ok := wt.watched[d]; ok {
			continue
		}
		// Stat before adding: if the directory is replaced in between, the
		// identity recorded is the old one and the next sync adds it again.
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			continue // not there (yet): tried again on the next sync
		}
		if err := wt.fw.Add(d); err != nil {
			continue
		}
		wt.watched[d] = fi
		added[d] = true
	}

	// Report the keys below the directories just added, and the keys not
	// reported since they were first covered: either may have changed while
	// nothing watched it.
	var report []string
	s.mu.Lock()
	for _, e := range s.paths {
		fresh := len(added) > 0 && e.under(added)
		_, covered := wt.watched[e.realDir]
		for k := range e.keys {
			if fresh || (covered && !wt.reported[k]) {
				report = append(report, k)
			}
			if covered {
				wt.reported[k] = true
			}
		}
	}
	s.mu.Unlock()
	sort.Strings(report)
	for _, k := range report {
		wt.changed(k)
	}
}

// keysUnder returns, sorted, the keys whose file lies in or below one of
// dirs, by its path as named, its directory with links resolved, or the path
// it resolved to.
func (s *Source) keysUnder(dirs map[string]bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for _, e := range s.paths {
		if !e.under(dirs) {
			continue
		}
		for k := range e.keys {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// under reports whether e lies in or below one of dirs. s.mu must be held.
func (e *entry) under(dirs map[string]bool) bool {
	own := [3]string{filepath.Dir(e.path), e.realDir, ""}
	if e.resolved != "" {
		own[2] = filepath.Dir(e.resolved)
	}
	for d := range dirs {
		for _, o := range own {
			if o != "" && within(o, d) {
				return true
			}
		}
	}
	return false
}

// within reports whether p is dir or lies below it. Both are clean.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if !strings.HasPrefix(p, dir) {
		return false
	}
	return strings.HasSuffix(dir, string(filepath.Separator)) || p[len(dir)] == filepath.Separator
}

// canonical returns dir with symbolic links resolved, or dir itself when it
// cannot be resolved (it does not exist yet, say).
func canonical(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return dir
}
