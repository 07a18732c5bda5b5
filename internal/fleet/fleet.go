package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// Config describes one measurement.
type Config struct {
	// Instances is N, the number of Stores. Required.
	Instances int
	// Keys is K, the keys each Store serves: the same K secrets for every
	// Store, each read as a whole (no #field), all named by WithRequired.
	// Required.
	Keys int
	// TTL is T, each Store's WithTTL. Required.
	TTL time.Duration
	// Jitter is each Store's WithJitter.
	Jitter float64
	// Stagger spreads the start of the Stores: each starts at a uniformly
	// random point of [0, Stagger) after the first. Zero starts them all at
	// once, as a fleet restarted together does.
	Stagger time.Duration
	// Warmup is the least time between the last first load and the steady
	// window; the warm-up lasts until every Store has also polled once.
	Warmup time.Duration
	// Window is the least length of the steady window; it lasts until
	// every Store has also polled twice in it.
	Window time.Duration
	// PhaseSpread gives every Store secrets.WithPhaseSpread: its first
	// poll after its first load, and after a reload, at a random phase
	// within T.
	PhaseSpread bool
	// Spread, when positive, adds a second fleet whose Stores have
	// WithReloadSpread(Spread), for a coordinated reload spread over that
	// window.
	Spread time.Duration
	// Quotas are the server's rate limits (smtest.WithQuota); AWSQuotas
	// for what AWS enforces.
	Quotas []smtest.Quota
	// HangGuard bounds each wait for an event (the fleet loaded, every
	// Store converged, every reload reported): a wait that lasts longer
	// fails the run. Zero means ten minutes.
	HangGuard time.Duration
	// Progress, if set, is told what the run is doing.
	Progress func(format string, args ...any)
}

// BatchCalls returns ⌈K/20⌉, the BatchGetSecretValue calls one Store's
// refresh round of its K keys costs.
func (c Config) BatchCalls() int {
	return (c.Keys + awssm.MaxBatchSize - 1) / awssm.MaxBatchSize
}

// Ideal returns the least rate of requests a second that keeps N Stores of
// K keys current every T with batching: N·⌈K/20⌉/T.
func (c Config) Ideal() float64 {
	return float64(c.Instances*c.BatchCalls()) / c.TTL.Seconds()
}

func (c Config) validate() error {
	switch {
	case c.Instances < 1:
		return fmt.Errorf("fleet: Instances %d: need at least one", c.Instances)
	case c.Keys < 1:
		return fmt.Errorf("fleet: Keys %d: need at least one", c.Keys)
	case c.TTL <= 0:
		return fmt.Errorf("fleet: TTL %v: must be positive", c.TTL)
	case c.Stagger < 0 || c.Warmup < 0 || c.Window < 0 || c.Spread < 0 || c.HangGuard < 0:
		return errors.New("fleet: Stagger, Warmup, Window, Spread and HangGuard must not be negative")
	}
	return nil
}

// Report is the outcome of Run.
type Report struct {
	Config Config
	// Ideal is Config.Ideal.
	Ideal float64
	// Startup is the traffic from the first Store's start until every
	// Store has loaded its keys.
	Startup Traffic
	// Steady is the traffic of the steady window.
	Steady Traffic
	// Rounds counts the background refresh rounds of the Stores in the
	// steady window (their refresh outcomes divided by K).
	Rounds float64
	// Polling is a rotation seen by polling alone.
	Polling Convergence
	// Reload is a rotation followed at once by a SIGHUP that every Store
	// of the fleet receives.
	Reload ReloadResult
	// SpreadReload is the same with WithReloadSpread(Config.Spread), in a
	// second fleet; nil when Spread is zero.
	SpreadReload *ReloadResult
	// Counts holds, per Store, its requests and refresh outcomes from its
	// first load to the polled rotation: the steady polling of each Store,
	// for checks per round.
	Counts []PollCounts
}

// Convergence is how long a rotation took to reach every Store.
type Convergence struct {
	Rotated time.Time       // when the new version was put at the server
	Times   []time.Duration // from Rotated until each Store served it, sorted
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
}

func newConvergence(rotated time.Time, times []time.Duration) Convergence {
	slices.Sort(times)
	return Convergence{Rotated: rotated, Times: times,
		P50: quantile(times, 0.50), P99: quantile(times, 0.99), Max: quantile(times, 1)}
}

// ReloadResult is a coordinated reload: a rotation, then one SIGHUP that
// every Store's ReloadOnSignal receives.
type ReloadResult struct {
	Spread time.Duration
	// Traffic runs from the signal until every Store has reported its
	// reload and serves the new version.
	Traffic Traffic
	// Reloads counts the reload rounds the Stores reported, retries
	// included; FailedAttempts those that applied nothing
	// (secrets.ReloadEvent.Err), with the error classes of their failed
	// keys in FailedClasses. Failed counts the Stores whose signalled
	// reload ended in failure, after ReloadOnSignal's retries.
	Reloads        int
	FailedAttempts int
	Failed         int
	FailedClasses  map[string]int
	// ReloadCalls counts the requests of the reloads themselves: each
	// Store's requests after its last refresh outcome before the reload
	// (or after the signal) until the reload's end. Traffic counts the
	// polls that fall in the phase too.
	ReloadCalls int
	Convergence Convergence
	// After is the traffic of the TTL that follows the last reload: every
	// Store's next poll falls in it, at a phase the reload set.
	After Traffic
}

// PollCounts is one Store's steady polling: from its first load to the
// polled rotation.
type PollCounts struct {
	Instance  int
	From, To  time.Time
	Refreshes int            // background refresh outcomes reported (K a round)
	ByOp      map[string]int // the Store's requests received in [From, To)
	// ThrottledBatches counts its BatchGetSecretValue calls answered
	// ThrottlingException.
	ThrottledBatches int
}

// Run measures one fleet (two with Config.Spread) against a fresh server,
// and closes everything it started before it returns.
//
// It takes real time: the Stores poll on the system clock, so a run lasts
// about Warmup + Window + 3·TTL, plus the spread fleet's start, reload and
// TTL. Every wait for an event is bounded by HangGuard.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.HangGuard == 0 {
		cfg.HangGuard = 10 * time.Minute
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	srv := smtest.New(smtest.WithRequestLog(), smtest.WithQuota(cfg.Quotas...))
	defer srv.Close()
	names := make([]string, cfg.Keys)
	for i := range names {
		names[i] = fmt.Sprintf("fleet/key-%02d", i)
		srv.Put(names[i], fmt.Sprintf("initial-%02d", i))
	}
	rep := &Report{Config: cfg, Ideal: cfg.Ideal()}

	f, err := start(ctx, cfg, srv, names, 0)
	if err != nil {
		return nil, err
	}
	err = f.measurePolling(ctx, rep)
	if err == nil {
		rep.Reload, err = f.measureReload(ctx, 1%cfg.Keys)
	}
	f.close()
	if err != nil {
		return nil, err
	}
	if cfg.Spread > 0 {
		srv.ResetRequests()
		f, err = start(ctx, cfg, srv, names, cfg.Spread)
		if err != nil {
			return nil, err
		}
		if err = f.waitLoaded(ctx); err == nil {
			var r ReloadResult
			r, err = f.measureReload(ctx, 2%cfg.Keys)
			rep.SpreadReload = &r
		}
		f.close()
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// A fleet is N Stores against one server, each with its own SDK client and
// its own ReloadOnSignal.
type fleet struct {
	cfg       Config
	srv       *smtest.Server
	names     []string // secret names
	keys      []string // their references, awssm://name
	transport *http.Transport
	spread    time.Duration // the Stores' WithReloadSpread
	started   time.Time

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each event
	inst    []*instance
}

// An instance is one Store and what it has reported.
type instance struct {
	id    int
	store *secrets.Store
	stop  func() // ReloadOnSignal's

	// Guarded by fleet.mu.
	initial   int
	loadedAt  time.Time
	refreshes []time.Time         // background and reload refresh outcomes
	served    map[string]servedAt // by key: the last version rotated to
	reloads   []reloadMark
	signals   []signalOutcome // the final outcomes of signalled reloads
}

// A reloadMark is a reload a Store reported: when, and when the refresh
// outcome before the reload's own came (zero if none), which bounds the
// reload's requests from below.
type reloadMark struct {
	ev     secrets.ReloadEvent
	at     time.Time
	before time.Time
}

type servedAt struct {
	version string
	at      time.Time
}

// appID is the AppID of Store i's client, less i; the SDK sends it in the
// User-Agent as "app/fleet-<i>".
const (
	appID     = "fleet-"
	appPrefix = "app/" + appID
)

// start creates the Stores, each when its start time comes. The Stores
// share one HTTP connection pool, large enough that connections are kept for
// reuse rather than opened afresh at each burst: what the server sees per
// request is the same as with a pool per Store, without a thousand idle pools.
func start(ctx context.Context, cfg Config, srv *smtest.Server, names []string, spread time.Duration) (*fleet, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 4 * cfg.Instances
	f := &fleet{cfg: cfg, srv: srv, names: names, transport: tr, spread: spread, changed: make(chan struct{})}
	for _, n := range names {
		f.keys = append(f.keys, "awssm://"+n)
	}
	offsets := make([]time.Duration, cfg.Instances)
	if cfg.Stagger > 0 {
		for i := range offsets {
			offsets[i] = rand.N(cfg.Stagger)
		}
		slices.Sort(offsets)
	}
	cfg.Progress("starting %d Stores (stagger %v, reload spread %v)", cfg.Instances, cfg.Stagger, spread)
	f.started = time.Now()
	for i, off := range offsets {
		if wait := time.Until(f.started.Add(off)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				f.close()
				return nil, ctx.Err()
			}
		}
		if err := f.add(i); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

// add starts Store i.
func (f *fleet) add(i int) error {
	in := &instance{id: i, served: map[string]servedAt{}}
	acfg := f.srv.Config()
	acfg.AppID = appID + strconv.Itoa(i)
	acfg.HTTPClient = &http.Client{Transport: f.transport}
	acfg.Retryer = func() aws.Retryer { return retry.NewStandard() } // the SDK's default
	src, err := awssm.New(secretsmanager.NewFromConfig(acfg))
	if err != nil {
		return err
	}
	opts := []secrets.Option{
		secrets.WithSource("awssm", src),
		secrets.WithTTL(f.cfg.TTL),
		secrets.WithJitter(f.cfg.Jitter),
		secrets.WithRequired(f.keys...),
		secrets.WithObserver(f.observer(in)),
		secrets.WithLogger(slog.New(&signalLog{f: f, in: in})),
	}
	if f.spread > 0 {
		opts = append(opts, secrets.WithReloadSpread(f.spread))
	}
	if f.cfg.PhaseSpread {
		opts = append(opts, secrets.WithPhaseSpread())
	}
	st, err := secrets.New(nil, opts...)
	if err != nil {
		return err
	}
	in.store = st
	in.stop = secrets.ReloadOnSignal(context.Background(), st)
	f.mu.Lock()
	f.inst = append(f.inst, in)
	f.mu.Unlock()
	return nil
}

// observer records the events of Store in.
func (f *fleet) observer(in *instance) secrets.Observer {
	return secrets.Observer{
		Refresh: func(ev secrets.RefreshEvent) {
			now := time.Now()
			f.event(func() {
				switch {
				case ev.Initial && ev.Err == nil:
					in.initial++
					if in.initial == f.cfg.Keys {
						in.loadedAt = now
					}
				case !ev.Initial:
					in.refreshes = append(in.refreshes, now)
				}
			})
		},
		Rotate: func(ev secrets.RotateEvent) {
			now := time.Now()
			f.event(func() { in.served[ev.Key] = servedAt{version: ev.To, at: now} })
		},
		Reload: func(ev secrets.ReloadEvent) {
			now := time.Now()
			f.event(func() {
				// The reload reported its own outcomes just before: one a
				// value, or only the failures when it failed.
				own := ev.Keys
				if ev.Err != nil {
					own = ev.Failed
				}
				m := reloadMark{ev: ev, at: now}
				if i := len(in.refreshes) - own - 1; i >= 0 {
					m.before = in.refreshes[i]
				}
				in.reloads = append(in.reloads, m)
			})
		},
	}
}

// event applies record under the fleet's lock and wakes the waiters.
func (f *fleet) event(record func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	record()
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until done, called under the fleet's lock, reports true,
// for at most the hang guard. what names the wait in its error.
func (f *fleet) waitFor(ctx context.Context, what string, done func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.HangGuard)
	defer cancel()
	for {
		f.mu.Lock()
		ok := done()
		changed := f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fleet: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// sleepUntil waits until t on the system clock, or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitLoaded waits until every Store has loaded every key.
func (f *fleet) waitLoaded(ctx context.Context) error {
	return f.waitFor(ctx, "every Store's first load", func() bool {
		for _, in := range f.inst {
			if in.loadedAt.IsZero() {
				return false
			}
		}
		return true
	})
}

// waitPolled waits until every Store has reported at least n background
// rounds (n·K refresh outcomes) since t.
func (f *fleet) waitPolled(ctx context.Context, t time.Time, n int) error {
	return f.waitFor(ctx, fmt.Sprintf("%d polling rounds of every Store", n), func() bool {
		for _, in := range f.inst {
			if countSince(in.refreshes, t) < n*f.cfg.Keys {
				return false
			}
		}
		return true
	})
}

func countSince(ts []time.Time, t time.Time) int {
	n := 0
	for _, x := range ts {
		if !x.Before(t) {
			n++
		}
	}
	return n
}

// rotate puts a new version of secret k at the server, as a PutSecretValue
// would, and returns its id and the time just before.
func (f *fleet) rotate(k int, tag string) (string, time.Time) {
	at := time.Now()
	return f.srv.Put(f.names[k], fmt.Sprintf("%s-%02d", tag, k)), at
}

// waitServed waits until every Store serves version of key k, and returns
// how long each took from rotated.
func (f *fleet) waitServed(ctx context.Context, k int, version string, rotated time.Time) (Convergence, error) {
	key := f.keys[k]
	var times []time.Duration
	err := f.waitFor(ctx, "every Store to serve the rotated version", func() bool {
		times = times[:0]
		for _, in := range f.inst {
			s, ok := in.served[key]
			if !ok || s.version != version {
				return false
			}
			times = append(times, s.at.Sub(rotated))
		}
		return true
	})
	if err != nil {
		return Convergence{}, err
	}
	return newConvergence(rotated, slices.Clone(times)), nil
}

// measurePolling waits for the fleet to load and warm up, measures the
// steady window, then rotates key 0 and measures how polling alone spreads
// it.
func (f *fleet) measurePolling(ctx context.Context, rep *Report) error {
	cfg := f.cfg
	if err := f.waitLoaded(ctx); err != nil {
		return err
	}
	loaded := time.Now()
	rep.Startup = Measure(f.srv.Requests(), f.started, loaded)
	cfg.Progress("loaded after %v; warming up", loaded.Sub(f.started).Round(time.Millisecond))
	if err := sleepUntil(ctx, loaded.Add(cfg.Warmup)); err != nil {
		return err
	}
	if err := f.waitPolled(ctx, loaded, 1); err != nil {
		return err
	}
	from := time.Now()
	cfg.Progress("steady window")
	if err := sleepUntil(ctx, from.Add(cfg.Window)); err != nil {
		return err
	}
	if err := f.waitPolled(ctx, from, 2); err != nil {
		return err
	}
	to := time.Now()

	version, rotated := f.rotate(0, "polled")
	cfg.Progress("rotated key 0; waiting for every Store to poll it")
	conv, err := f.waitServed(ctx, 0, version, rotated)
	if err != nil {
		return err
	}
	rep.Polling = conv

	log := f.srv.Requests()
	rep.Steady = Measure(log, from, to)
	f.mu.Lock()
	defer f.mu.Unlock()
	var outcomes int
	for _, in := range f.inst {
		outcomes += countSince(in.refreshes, from) - countSince(in.refreshes, to)
		rep.Counts = append(rep.Counts, f.pollCounts(log, in, rotated))
	}
	rep.Rounds = float64(outcomes) / float64(cfg.Keys)
	return nil
}

// pollCounts gathers Store in's requests and refresh outcomes from its first
// load to end. The caller holds f.mu.
func (f *fleet) pollCounts(log []smtest.Request, in *instance, end time.Time) PollCounts {
	pc := PollCounts{Instance: in.id, From: in.loadedAt, To: end, ByOp: map[string]int{}}
	pc.Refreshes = countSince(in.refreshes, in.loadedAt) - countSince(in.refreshes, end)
	for _, r := range log {
		if r.Time.Before(pc.From) || !r.Time.Before(pc.To) || instanceOf(r) != in.id {
			continue
		}
		pc.ByOp[r.Op]++
		if r.Throttled && r.Op == "BatchGetSecretValue" {
			pc.ThrottledBatches++
		}
	}
	return pc
}

// instanceOf returns the Store that sent r, from the AppID in its
// User-Agent, or -1.
func instanceOf(r smtest.Request) int {
	_, rest, ok := strings.Cut(r.UserAgent, appPrefix)
	if !ok {
		return -1
	}
	end := strings.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' })
	if end >= 0 {
		rest = rest[:end]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return n
}

// measureReload rotates key k, sends the process one SIGHUP, which every
// Store's ReloadOnSignal receives, and measures the reloads, the
// convergence and the first polling round after them.
func (f *fleet) measureReload(ctx context.Context, k int) (ReloadResult, error) {
	cfg := f.cfg
	res := ReloadResult{Spread: f.spread, FailedClasses: map[string]int{}}
	version, rotated := f.rotate(k, "reloaded")
	signaled := time.Now()
	if err := sighup(); err != nil {
		return res, err
	}
	cfg.Progress("rotated key %d and sent SIGHUP; waiting for every reload", k)
	// Each Store's signalled reload, retries included, ends with one
	// outcome; its own requests run from the refresh outcome before its
	// first reload (or the signal) to that outcome.
	reloaded := make(map[*instance]time.Time, len(f.inst))
	err := f.waitFor(ctx, "the outcome of every Store's signalled reload", func() bool {
		for _, in := range f.inst {
			if _, ok := reloaded[in]; ok {
				continue
			}
			for _, o := range in.signals {
				if !o.at.Before(signaled) {
					reloaded[in] = o.at
					if !o.ok {
						res.Failed++
					}
					break
				}
			}
		}
		return len(reloaded) == len(f.inst)
	})
	if err != nil {
		return res, err
	}
	spans := make(map[int][2]time.Time, len(f.inst))
	f.mu.Lock()
	for _, in := range f.inst {
		lo := signaled
		first := true
		for _, m := range in.reloads {
			if m.at.Before(signaled) || m.at.After(reloaded[in]) {
				continue
			}
			res.Reloads++
			if first && m.before.After(lo) {
				lo = m.before
			}
			first = false
			if m.ev.Err != nil {
				res.FailedAttempts++
				for _, cl := range failedClasses(m.ev.Err) {
					res.FailedClasses[cl]++
				}
			}
		}
		spans[in.id] = [2]time.Time{lo, reloaded[in]}
	}
	f.mu.Unlock()
	conv, err := f.waitServed(ctx, k, version, rotated)
	if err != nil {
		return res, err
	}
	res.Convergence = conv
	end := time.Now()
	log := f.srv.Requests()
	res.Traffic = Measure(log, signaled, end)
	for _, r := range log {
		if sp, ok := spans[instanceOf(r)]; ok && r.Time.After(sp[0]) && !r.Time.After(sp[1]) {
			res.ReloadCalls++
		}
	}

	// The next poll of every Store falls within a TTL of its reload.
	var last time.Time
	for _, at := range reloaded {
		if at.After(last) {
			last = at
		}
	}
	cfg.Progress("reloaded; measuring the next polling round")
	if err := sleepUntil(ctx, last.Add(cfg.TTL)); err != nil {
		return res, err
	}
	err = f.waitFor(ctx, "every Store's first poll after its reload", func() bool {
		for _, in := range f.inst {
			if countSince(in.refreshes, reloaded[in]) < cfg.Keys {
				return false
			}
		}
		return true
	})
	if err != nil {
		return res, err
	}
	res.After = Measure(f.srv.Requests(), last, last.Add(cfg.TTL))
	return res, nil
}

// failedClasses returns the error classes of the keys a reload failed on.
func failedClasses(err error) []string {
	var re *secrets.ReloadError
	if !errors.As(err, &re) {
		return []string{secrets.ErrorClass(err)}
	}
	var out []string
	for _, ke := range re.Errors {
		if ke != nil {
			out = append(out, secrets.ErrorClass(ke))
		}
	}
	return out
}

// sighup sends SIGHUP to this process, as kill -HUP does: os/signal hands
// it to every ReloadOnSignal that is relaying it.
func sighup() error {
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		return err
	}
	return p.Signal(syscall.SIGHUP)
}

// close stops every Store's signal relay, closes the Stores and the
// connections they used.
func (f *fleet) close() {
	f.mu.Lock()
	inst := slices.Clone(f.inst)
	f.mu.Unlock()
	for _, in := range inst {
		in.stop()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, in := range inst {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = in.store.Close()
		}()
	}
	wg.Wait()
	f.transport.CloseIdleConnections()
}
