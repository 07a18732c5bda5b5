package secrets

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// A job is one fetch of one value, from the moment it is asked for until its
// outcome is applied: fetch, then examine (the verdict on the candidate:
// changed or not, and accepted by the validators or not), then apply.
//
// Two fetches of one value are ordered by their spans on the Store's tick
// counter, taken when the job is made and when the source answers: a fetch
// that started after another ended read the backend after it. Fetches whose
// spans overlap may have read it in either order; when they disagree, a new
// fetch settles which value is current.
type job struct {
	b     *baseState
	start uint64 // tick when the job was made
	done  uint64 // tick when the source answered
	gen   uint64 // b.gen when the request was made: what Known was
	req   Request

	res      Result
	err      error  // the fetch's failure; the class sentinel is in the chain
	rejected *Error // the verdict's refusal of the candidate, cleared at each examination

	// partial says that res may rest on a read of the current version
	// alone: FetchMany answered it Unchanged (which a batch may do on the
	// strength of the current version; see Result.Unchanged), or answered
	// a forced request (see Request.Forced) with the previous and pending
	// versions of req.Known, which the source may have taken from Known
	// rather than read. See apply.
	partial bool

	// The verdict of the last examination, and the state it was reached
	// against.
	changed    bool // res holds versions other than those served
	refetch    bool // the value must be fetched again (see apply)
	verdictGen uint64
	keysGen    uint64

	// A fetch that finds a served version failed and a pending one beside
	// it examines the pending one (see adoptable): raw keeps what the
	// source returned, adopting says res holds the adoption, and noAdopt
	// that the adoption was refused and raw is examined instead.
	raw      Versions
	adopting bool
	noAdopt  bool
}

// fetch runs the jobs against their sources, at most cfg.concurrency at once,
// batching where a source can. With conditional set, jobs carry what the
// Store holds so a source may answer Unchanged. Without it, jobs carry
// nothing, except forced ones (a reload's), which keep what the Store holds
// for a BatchFetcher to build on (see Request.Forced); a forced job that
// does not go to FetchMany is fetched with Fetch.
func (s *Store) fetch(ctx context.Context, jobs []*job, conditional bool) {
	bySrc := map[Source][]*job{}
	var order []Source
	for _, j := range jobs {
		if !conditional && !j.req.Forced {
			j.req.Known = Versions{}
		}
		if _, ok := bySrc[j.b.src]; !ok {
			order = append(order, j.b.src)
		}
		bySrc[j.b.src] = append(bySrc[j.b.src], j)
	}
	if len(jobs) == 1 {
		// A single fetch (a first load, most often) needs no goroutines.
		j := jobs[0]
		s.fetchOne(ctx, j, conditional)
		j.check(s.ctx)
		return
	}
	g := new(errgroup.Group)
	g.SetLimit(s.cfg.concurrency)
	for _, src := range order {
		js := bySrc[src]
		if bf, ok := src.(BatchFetcher); ok && len(js) > 1 {
			g.Go(func() error {
				reqs := make([]Request, len(js))
				for i, j := range js {
					reqs[i] = j.req
				}
				res := s.callBatch(ctx, bf, reqs)
				s.refuseUnchanged(ctx, src, bf, js, res)
				done := s.tick()
				for i, j := range js {
					j.res, j.done = res[i], done
					j.partial = res[i].Err == nil && (res[i].Unchanged || j.req.Forced &&
						res[i].Versions.Previous.sameAs(j.req.Known.Previous) &&
						res[i].Versions.Pending.sameAs(j.req.Known.Pending))
				}
				return nil
			})
			continue
		}
		for _, j := range js {
			g.Go(func() error {
				s.fetchOne(ctx, j, conditional)
				return nil
			})
		}
	}
	_ = g.Wait()
	for _, j := range jobs {
		j.check(s.ctx)
	}
}

// refuseUnchanged asks again, without what the Store holds, for the keys
// whose forced request the source answered Unchanged (a source written
// before Request.Forced existed): that answer says the source did not read
// the value again, which a reload must. The new answers replace the old in
// res.
func (s *Store) refuseUnchanged(ctx context.Context, src Source, bf BatchFetcher, js []*job, res []Result) {
	var again []int
	for i, j := range js {
		if j.req.Forced && res[i].Unchanged {
			j.req = Request{Key: j.req.Key}
			again = append(again, i)
		}
	}
	switch {
	case len(again) == 1:
		res[again[0]] = s.callFetch(ctx, src, js[again[0]].req.Key)
	case len(again) > 1:
		reqs := make([]Request, len(again))
		for n, i := range again {
			reqs[n] = js[i].req
		}
		for n, r := range s.callBatch(ctx, bf, reqs) {
			res[again[n]] = r
		}
	}
}

// fetchOne fetches j alone, asking only whether it changed where the source
// can tell.
func (s *Store) fetchOne(ctx context.Context, j *job, conditional bool) {
	if cd, ok := j.b.src.(ChangeDetector); ok && conditional && !j.req.Known.Current.IsZero() {
		j.res = s.callDetect(ctx, cd, j.req)
	} else {
		j.res = s.callFetch(ctx, j.b.src, j.req.Key)
	}
	j.done = s.tick()
}

// tick returns the next tick of the Store's counter, which orders the starts
// and ends of fetches.
func (s *Store) tick() uint64 { return s.ticks.Add(1) }

// check classifies a job's result. The Store serves no empty value: a
// source that returns one has failed, whatever it says, and an empty
// previous or pending version counts as none, as does a pending version
// that is already current.
func (j *job) check(storeCtx context.Context) {
	r := &j.res
	switch {
	case r.Err != nil:
		j.err = classify(storeCtx, r.Err)
	case r.Unchanged && j.req.Known.Current.IsZero():
		j.err = fmt.Errorf("%w: source answered unchanged for a value it was not shown", ErrInvalid)
	case r.Unchanged:
	case r.Versions.Current.IsZero():
		j.err = fmt.Errorf("%w: source returned no current version", ErrInvalid)
	case r.Versions.Current.Len() == 0:
		j.err = fmt.Errorf("%w: source returned an empty value", ErrInvalid)
	default:
		if !r.Versions.Previous.IsZero() && r.Versions.Previous.Len() == 0 {
			r.Versions.Previous = Secret{}
		}
		if !r.Versions.Pending.IsZero() && (r.Versions.Pending.Len() == 0 || r.Versions.Pending.Version() == r.Versions.Current.Version()) {
			r.Versions.Pending = Secret{}
		}
	}
}

// classify keeps a source's classified error and maps the context's errors.
func classify(storeCtx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrPermission),
		errors.Is(err, ErrTransient), errors.Is(err, ErrInvalid), errors.Is(err, ErrClosed):
		return err
	case storeCtx.Err() != nil:
		return ErrClosed
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}

func (s *Store) callFetch(ctx context.Context, src Source, key string) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	defer recoverInto(&r.Err, "source Fetch")
	v, err := src.Fetch(ctx, key)
	return Result{Versions: v, Err: err}
}

func (s *Store) callDetect(ctx context.Context, cd ChangeDetector, req Request) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	defer recoverInto(&r.Err, "source FetchIfChanged")
	return cd.FetchIfChanged(ctx, req)
}

func (s *Store) callBatch(ctx context.Context, bf BatchFetcher, reqs []Request) (res []Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	var err error
	func() {
		defer recoverInto(&err, "source FetchMany")
		res = bf.FetchMany(ctx, reqs)
	}()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("%w: source answered %d of %d requests", ErrInvalid, len(res), len(reqs))
	}
	if err != nil {
		res = make([]Result, len(reqs))
		for i := range res {
			res[i].Err = err
		}
	}
	return res
}

// recoverInto turns a panic in code the Store calls (a source, a validator)
// into an error. The panic's value is left out of the error: it could hold
// anything, a secret included.
func recoverInto(err *error, what string) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s panicked", ErrInvalid, what)
	}
}
