package secrets

import "log/slog"

// startWatches starts the watch of each source that is a Watcher, once per
// source.
func (s *Store) startWatches() {
	seen := map[Source]bool{}
	watch := func(src Source) {
		w, ok := src.(Watcher)
		if !ok || seen[src] {
			return
		}
		seen[src] = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.callWatch(w, func(key string) { s.markDirty(src, key) })
			if err != nil && s.ctx.Err() == nil {
				s.log.LogAttrs(s.ctx, slog.LevelWarn, "secrets: source watch stopped; polling continues",
					slog.String("error", err.Error()))
			}
		}()
	}
	if s.def != nil {
		watch(s.def)
	}
	for _, src := range s.cfg.sources {
		watch(src)
	}
}

// callWatch runs a source's Watch, turning a panic into an error that leaves
// out the panic's value.
func (s *Store) callWatch(w Watcher, changed func(string)) (err error) {
	defer recoverInto(&err, "source Watch")
	return w.Watch(s.ctx, changed)
}

// markDirty is a Watcher's callback: key of src (or every key of src, for "")
// may have changed. A loaded value is refreshed now; a value whose first
// load failed may be tried again at once. A fetch already under way may have
// read the value from before the change, so its outcome does not delay the
// next fetch (see apply).
func (s *Store) markDirty(src Source, key string) {
	s.mu.Lock()
	now := s.clock.Now()
	var retry []*baseState
	for _, b := range s.bases {
		if b.src != src || (key != "" && b.ref.Path != key) {
			continue
		}
		b.noticeAt = s.tick()
		if !b.loaded {
			b.next = now
			retry = append(retry, b)
			continue
		}
		b.expedite(now, s.cfg.backoffMin)
	}
	if len(retry) > 0 {
		s.publishLocked(retry...)
	}
	s.mu.Unlock()
	s.nudge()
}
