package secrets

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// validatorIndex finds the validators registered for the keys of a value.
type validatorIndex struct {
	all []validatorEntry
	// byBase lists, for each value, the keys validators were registered
	// for: those keys are checked on every change of the value, whether or
	// not anyone has read them yet.
	byBase map[string]map[string]string // base → registered key → its field
}

func indexValidators(vs []validatorEntry) (validatorIndex, error) {
	vi := validatorIndex{all: vs, byBase: map[string]map[string]string{}}
	for _, v := range vs {
		for key := range v.keys {
			ref, err := ParseRef(key)
			if err != nil {
				return validatorIndex{}, fmt.Errorf("secrets: WithValidator: %w", err)
			}
			base := ref.base()
			if vi.byBase[base] == nil {
				vi.byBase[base] = map[string]string{}
			}
			vi.byBase[base][key] = ref.Field
		}
	}
	return vi, nil
}

// A check is one key's candidate, to be validated.
type check struct {
	j      *job
	key    string
	served bool
	cand   Versions
}

// examine reaches, for each fetched job, a verdict on its candidate: whether
// its versions differ from those served and, where they do, whether every key
// the Store serves from the value (and every key a validator was registered
// for) still finds its field and passes the validators. The verdict holds
// for the state of the value it was reached against, which the job records;
// apply checks that state is still current. No lock is held while
// validators run.
func (s *Store) examine(ctx context.Context, jobs []*job) {
	var checks []check
	s.mu.Lock()
	for _, j := range jobs {
		b := j.b
		j.verdictGen, j.keysGen = b.gen, b.keysGen
		j.changed, j.rejected = false, nil
		if j.err != nil || j.res.Unchanged {
			continue
		}
		if !j.adopting && !j.noAdopt {
			j.raw = j.res.Versions
		}
		j.res.Versions, j.adopting = j.raw, false
		if !j.noAdopt {
			j.res.Versions, j.adopting = b.adoptable(j.raw)
		}
		if b.loaded && sameValues(b.versions, j.res.Versions) {
			continue
		}
		j.changed = true
		if !b.loaded || sameServed(b.versions, j.res.Versions) {
			// A first load has no earlier value to protect; the fields its
			// keys select are checked as their entries are made. A change
			// of the pending version alone changes nothing served: it is
			// validated when the served value fails.
			continue
		}
		checks = s.checksLocked(checks, j)
	}
	s.mu.Unlock()
	sort.Slice(checks, func(a, b int) bool { return checks[a].key < checks[b].key })
	for _, c := range checks {
		if c.j.rejected != nil {
			continue
		}
		c.cand.Current = c.cand.Current.with(c.key, c.j.b.srcName, time.Time{})
		c.cand.Previous = c.cand.Previous.with(c.key, c.j.b.srcName, time.Time{})
		c.cand.Pending = c.cand.Pending.with(c.key, c.j.b.srcName, time.Time{})
		if err := s.validate(ctx, c.key, c.served, c.cand); err != nil {
			c.j.reject(&Error{Op: "validate", Key: c.key, Err: err})
		}
	}
	// A refused adoption is no failure of the value: examine what the
	// source returned instead.
	var again []*job
	for _, j := range jobs {
		if j.adopting && j.rejected != nil {
			j.noAdopt = true
			again = append(again, j)
		}
	}
	if len(again) > 0 {
		s.examine(ctx, again)
	}
}

// checksLocked appends the checks that j's candidate needs, or rejects it
// when a field that a key is served from has gone. s.mu must be held.
func (s *Store) checksLocked(checks []check, j *job) []check {
	b := j.b
	cand := parseVersions(j.res.Versions)
	old := b.fields()
	keys := make(map[string]bool, len(b.keys)) // key → served
	for key := range s.validators.byBase[b.key] {
		keys[key] = false
	}
	for key := range b.keys {
		keys[key] = true
	}
	for key, served := range keys {
		field, ok := b.keys[key]
		if !ok {
			field = s.validators.byBase[b.key][key]
		}
		cv, err := cand.field(field)
		if err != nil {
			// A field the Store serves has gone from the new value, or
			// become empty: keep the old one. A field that was already
			// missing stays so.
			if _, ferr := old.field(field); ferr == nil {
				j.reject(&Error{Op: "field", Key: key, Err: err})
				return checks
			}
			continue
		}
		if s.validators.applies(key, served) {
			checks = append(checks, check{j: j, key: key, served: served, cand: cv})
		}
	}
	return checks
}

// applies reports whether any validator runs for key.
func (vi validatorIndex) applies(key string, served bool) bool {
	for _, v := range vi.all {
		if v.keys == nil && served || v.keys[key] {
			return true
		}
	}
	return false
}

// validate runs, in the order they were registered, the validators for key:
// those registered for it, and those registered for every key when key is
// served.
func (s *Store) validate(ctx context.Context, key string, served bool, cand Versions) (err error) {
	for _, v := range s.validators.all {
		if !(v.keys == nil && served || v.keys[key]) {
			continue
		}
		err = func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
			defer cancel()
			defer recoverInto(&err, "validator")
			return v.fn(ctx, key, cand)
		}()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return nil
}

// reject records that j's candidate was refused.
func (j *job) reject(e *Error) { j.rejected = e }

// failure returns why j failed, its fetch or its candidate, or nil.
func (j *job) failure() error {
	if j.err != nil {
		return j.err
	}
	if j.rejected != nil {
		return j.rejected.Err
	}
	return nil
}

func (j *job) keyError() *Error {
	if j.err == nil && j.rejected != nil {
		return j.rejected
	}
	return &Error{Op: "fetch", Key: j.b.key, Err: j.err}
}
