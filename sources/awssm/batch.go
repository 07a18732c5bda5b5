package awssm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// FetchMany fetches many keys in few calls; the Store uses it for refresh
// rounds, Refresh and reloads of more than one key. Keys that track
// AWSCURRENT (no query) are read with BatchGetSecretValue, up to
// MaxBatchSize secrets a call. For a request with known versions whose
// AWSCURRENT still has the known VersionId the answer is Unchanged, so a
// round over unchanged secrets costs one call per twenty. For the others
// FetchMany asks DescribeSecret which versions carry AWSPREVIOUS and
// AWSPENDING, one call each, and reads those it does not hold by VersionId.
// Keys with a query, keys whose known versions include a pending one (a
// batch sees AWSCURRENT only, and could not tell that it was discarded), a
// lone key, and keys the batch left unanswered are polled one by one as
// FetchIfChanged and Fetch do.
//
// A forced request (a reload's; see secrets.Request.Forced) is never
// answered Unchanged. Its AWSCURRENT is the value BatchGetSecretValue has
// just returned. Where that version is the known current one, and its
// staging labels agree with the known versions (AWSCURRENT, and not
// AWSPREVIOUS), the known previous version is kept beside it without
// another call: a reload of 100 unchanged secrets costs the 5 calls of a
// round. Where AWSCURRENT moved, or its labels disagree, nothing known is
// reused: DescribeSecret names the versions and each one not just read is
// read by VersionId, two calls for a rotated secret. A batch sees the labels
// of the AWSCURRENT version only, so a reload does not see AWSPREVIOUS moved
// or removed (RemovePrevious) while AWSCURRENT stayed, nor a pending version
// staged meanwhile; a Refresh of the key, a single-key poll and the Store's
// refresh after an authentication failure read all three labels. Forced
// requests that cannot be batched (a query, a known pending version, a lone
// key, a throttled batch) are read in full, as Fetch does.
//
// Failures are per key. An entry of the response's Errors becomes the error
// of its key (ResourceNotFoundException → secrets.ErrNotFound,
// AccessDeniedException and DecryptionFailure → secrets.ErrPermission, ...).
// A throttled BatchGetSecretValue call, whose quota (100 a second in each
// region) is a hundredth of GetSecretValue's, is not retried: its keys are
// polled with DescribeSecret instead, which has the highest quota of the
// service; once one of those calls is throttled too, the remaining keys of
// the round fail with secrets.ErrTransient without a call, and the Store
// backs off. A BatchGetSecretValue refused as a whole (AccessDeniedException:
// the IAM policy lacks secretsmanager:BatchGetSecretValue) is not tried again
// by this Source, which polls each key from then on. Other failures of the
// whole call (5xx, timeouts, connection errors) fail its keys with
// secrets.ErrTransient.
//
// FetchMany returns one Result per request, in order. At most the
// concurrency set with WithConcurrency of its API calls are in flight at
// once.
func (s *Source) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	res := make([]secrets.Result, len(reqs))
	var batched []item
	var follow []followUp
	for i, q := range reqs {
		r, err := parseKey(q.Key)
		switch {
		case err != nil:
			res[i].Err = err
		case ctx.Err() != nil:
			res[i].Err = ctxError(r, ctx.Err())
		case r.tracksCurrent() && s.batch && !s.batchOff.Load() && q.Known.Pending.IsZero():
			// A key with a known pending version is polled alone: a batch
			// sees AWSCURRENT only, so it could not tell that the pending
			// version was discarded.
			batched = append(batched, item{i: i, r: r})
		default:
			follow = append(follow, followUp{i: i, r: r})
		}
	}
	if len(batched) == 1 {
		// One secret: DescribeSecret costs the same one call against a
		// far higher quota.
		follow = append(follow, followUp{i: batched[0].i, r: batched[0].r})
		batched = nil
	}

	chunks := chunk(batched)
	more := make([][]followUp, len(chunks))
	g := new(errgroup.Group)
	g.SetLimit(s.concurrency)
	for c, items := range chunks {
		g.Go(func() error {
			more[c] = s.batchChunk(ctx, reqs, items, res)
			return nil
		})
	}
	_ = g.Wait()
	for _, m := range more {
		follow = append(follow, m...)
	}

	var brk breaker
	g = new(errgroup.Group)
	g.SetLimit(s.concurrency)
	for _, f := range follow {
		g.Go(func() error {
			res[f.i] = s.followUp(ctx, reqs[f.i], f, &brk)
			return nil
		})
	}
	_ = g.Wait()
	return res
}

// An item is a request that goes into a batch.
type item struct {
	i int // index in the requests
	r secretRef
}

// A followUp is the per-secret work left after the batches: with cur set,
// finding the AWSPREVIOUS and AWSPENDING to go with the AWSCURRENT the batch
// returned (whose staging labels are stages); otherwise polling the key on
// its own.
type followUp struct {
	i      int
	r      secretRef
	cur    secrets.Secret
	stages []string
}

// chunk groups items into batches of at most MaxBatchSize distinct secret
// ids; a request for an id already in the batch being filled shares its
// slot.
func chunk(items []item) [][]item {
	var out [][]item
	var cur []item
	ids := map[string]bool{}
	for _, it := range items {
		if !ids[it.r.id] && len(ids) == MaxBatchSize {
			out = append(out, cur)
			cur, ids = nil, map[string]bool{}
		}
		ids[it.r.id] = true
		cur = append(cur, it)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// batchChunk makes one BatchGetSecretValue call for items, writes the
// results it can settle into res and returns the follow-ups.
func (s *Source) batchChunk(ctx context.Context, reqs []secrets.Request, items []item, res []secrets.Result) []followUp {
	var ids []string
	seen := map[string]bool{}
	for _, it := range items {
		if !seen[it.r.id] {
			seen[it.r.id] = true
			ids = append(ids, it.r.id)
		}
	}
	out, err := s.client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids},
		s.callOptions(true)...)
	if err != nil {
		var ae smithy.APIError
		refused := errors.As(err, &ae) && batchRefusedCodes[ae.ErrorCode()]
		switch {
		case refused:
			s.batchOff.Store(true)
			fallthrough
		case isThrottle(err), errors.As(err, &ae) && classOf(err) == secrets.ErrInvalid:
			// Poll the keys one by one: throttling is about this call's
			// own quota, and an invalid request may be one bad id.
			return individually(items)
		}
		for _, it := range items {
			res[it.i].Err = callError("BatchGetSecretValue", it.r, "", err)
		}
		return nil
	}

	done := make([]bool, len(items))
	var follow []followUp
	for _, e := range out.SecretValues {
		for n, it := range items {
			if done[n] || !sameSecret(it.r.id, e) {
				continue
			}
			done[n] = true
			cur, err := newSecret(it.r, e.VersionId, e.SecretString, e.SecretBinary)
			req := reqs[it.i]
			known := req.Known
			switch {
			case err != nil:
				res[it.i].Err = err
			case known.Current.IsZero() || known.Current.Version() != cur.Version():
				follow = append(follow, followUp{i: it.i, r: it.r, cur: cur, stages: e.VersionStages})
			case !req.Forced:
				res[it.i] = secrets.Result{Unchanged: true}
			case stagesAgree(e.VersionStages):
				// A reload: the value just read, with the versions known
				// beside the current one, which has not moved.
				res[it.i] = secrets.Result{Versions: secrets.Versions{Current: cur, Previous: known.Previous}}
			default:
				follow = append(follow, followUp{i: it.i, r: it.r, cur: cur, stages: e.VersionStages})
			}
		}
	}
	for _, e := range out.Errors {
		for n, it := range items {
			if done[n] || it.r.id != derefString(e.SecretId) {
				continue
			}
			done[n] = true
			res[it.i].Err = callError("BatchGetSecretValue", it.r, "", entryError(e))
		}
	}
	for n, it := range items {
		if !done[n] {
			// Neither a value nor an error matched the id: ask alone.
			follow = append(follow, followUp{i: it.i, r: it.r})
		}
	}
	return follow
}

// stagesAgree reports whether the staging labels a batch returned for the
// AWSCURRENT version of a secret agree with known versions whose current one
// has the same VersionId and which hold no pending version (a batch takes no
// such key): AWSCURRENT is among them (an empty list says nothing), and
// AWSPREVIOUS is not, since the known previous version is another one.
// AWSPENDING there is a rotation that ended, which leaves no pending
// version.
func stagesAgree(stages []string) bool {
	if slices.Contains(stages, stagePrevious) {
		return false
	}
	return len(stages) == 0 || slices.Contains(stages, stageCurrent)
}

// batchRefusedCodes are the answers to a BatchGetSecretValue call as a whole
// that say this caller cannot use the operation at all: IAM does not allow
// it, or the endpoint (an emulator, an old proxy) lacks it.
var batchRefusedCodes = map[string]bool{
	"AccessDeniedException":     true,
	"AccessDenied":              true,
	"UnknownOperationException": true,
}

func individually(items []item) []followUp {
	out := make([]followUp, len(items))
	for n, it := range items {
		out[n] = followUp{i: it.i, r: it.r}
	}
	return out
}

// sameSecret reports whether id, as it was put in SecretIdList, names the
// secret of entry e: its name, its ARN, or its ARN without the six random
// characters AWS appends (a partial ARN).
func sameSecret(id string, e types.SecretValueEntry) bool {
	name, arn := derefString(e.Name), derefString(e.ARN)
	switch {
	case id == name || id == arn:
		return true
	case strings.HasPrefix(id, "arn:"):
		return len(arn) == len(id)+7 && strings.HasPrefix(arn, id+"-")
	}
	return false
}

// followUp does the per-secret work of one request.
func (s *Source) followUp(ctx context.Context, req secrets.Request, f followUp, brk *breaker) secrets.Result {
	if err := brk.tripped(); err != nil {
		return secrets.Result{Err: fmt.Errorf("awssm: %s: %w: not polled, since Secrets Manager throttled this round: %w",
			keyquote.Quote(f.r.id), secrets.ErrTransient, bounded(err))}
	}
	var r secrets.Result
	switch {
	case !f.cur.IsZero() && req.Forced:
		// A reload whose current version moved, or whose labels say
		// something the known versions do not: read the others again.
		r.Versions, _, r.Err = s.assemble(ctx, f.r, secrets.Versions{}, f.cur, f.stages)
	case !f.cur.IsZero():
		var unchanged bool
		r.Versions, unchanged, r.Err = s.assemble(ctx, f.r, req.Known, f.cur, f.stages)
		if unchanged {
			r = secrets.Result{Unchanged: true}
		}
	case !req.Known.Current.IsZero() && !req.Forced:
		r = s.detect(ctx, f.r, req.Known)
	default:
		r.Versions, r.Err = s.Fetch(ctx, req.Key)
	}
	if r.Err != nil && isThrottle(r.Err) {
		brk.trip(r.Err)
	}
	return r
}

// A breaker stops the per-secret calls of one FetchMany once Secrets
// Manager has throttled one of them.
type breaker struct {
	mu  sync.Mutex
	err error
}

func (b *breaker) trip(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

func (b *breaker) tripped() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
