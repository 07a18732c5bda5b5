package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// consumer is a server reading the rotated key through a Store of its own
// and serving the Store's status endpoint. Its Store polls once an hour, so
// it moves to a new version only when the test refreshes it.
type consumer struct {
	store *secrets.Store
	srv   *httptest.Server
	key   string // the key as the Store reads it
}

func newConsumer(t *testing.T, src *memory.Source, keys ...string) *consumer {
	t.Helper()
	store, err := secrets.New(nil, secrets.WithSource("mem", src), secrets.WithTTL(time.Hour), secrets.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := store.Get(ctxT(t), "mem://"+k); err != nil {
			t.Fatal(err)
		}
	}
	c := &consumer{store: store, srv: httptest.NewServer(store.StatusHandler()), key: "mem://" + keys[0]}
	t.Cleanup(func() {
		c.srv.Close()
		store.Close()
	})
	return c
}

// pickUp makes the consumer read its keys again, as its next poll or a
// SIGHUP would.
func (c *consumer) pickUp(t *testing.T) {
	t.Helper()
	if err := c.store.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func (c *consumer) url() string { return c.srv.URL + "/status" }

func memKey(key string) string { return "mem://" + key }

// revokeWatch is a Target that records, when it revokes, the time and the
// consumers that do not serve the store's current version at that moment.
type revokeWatch struct {
	*fakeDB
	clk       *fakeclock.Clock
	consumers []*consumer
	key       string // the consumers' key

	mu     sync.Mutex
	at     time.Time
	behind []string
}

func (w *revokeWatch) Revoke(ctx context.Context, old, cur secrets.Secret, notes map[string]string) error {
	w.mu.Lock()
	w.at = w.clk.Now()
	w.behind = nil
	for _, c := range w.consumers {
		if st, ok := c.store.Status(w.key); !ok || st.Version != cur.Version() {
			w.behind = append(w.behind, c.url())
		}
	}
	w.mu.Unlock()
	return w.fakeDB.Revoke(ctx, old, cur, notes)
}

func (w *revokeWatch) revokedAt() (time.Time, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at, w.behind
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDriven runs fn as runClocked does, calling before(now) each time fn
// has armed a wait and before the clock moves to it, so that a test acts
// at chosen moments of the fake clock.
func runDriven[T any](t *testing.T, clk *fakeclock.Clock, before func(now time.Time), fn func() (T, error)) (T, error) {
	t.Helper()
	var v T
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = fn()
	}()
	for awaitWait(t, clk, done) {
		before(clk.Now())
		boundsOf(clk).advanceToWait(time.Time{})
	}
	return v, err
}

// promotedAt returns an option recording when the version was promoted,
// and a function reading it (zero before).
func promotedAt(clk *fakeclock.Clock) (rotate.Option, func() time.Time) {
	var mu sync.Mutex
	var at time.Time
	return rotate.WithNotify(func(_ context.Context, e rotate.Event) {
			if e.Kind == rotate.EventPromoted {
				mu.Lock()
				at = clk.Now()
				mu.Unlock()
			}
		}), func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return at
		}
}

// schedule picks up the new version in consumer i at offsets[i] after the
// promotion (a negative offset: never), and records when each did.
type schedule struct {
	t        *testing.T
	cs       []*consumer
	offsets  []time.Duration
	promoted func() time.Time
	done     []time.Time
}

func (s *schedule) before(now time.Time) {
	p := s.promoted()
	if p.IsZero() {
		return
	}
	if s.done == nil {
		s.done = make([]time.Time, len(s.cs))
	}
	for i, c := range s.cs {
		if s.offsets[i] >= 0 && s.done[i].IsZero() && !now.Before(p.Add(s.offsets[i])) {
			c.pickUp(s.t)
			s.done[i] = now
		}
	}
}

// TestConsumersSwitchAtDifferentMoments: three consumers pick up the new
// version at the promotion, past the overlap and well past it; the agent
// revokes at the first poll after the last one switched, and not before,
// though the target reports nothing in use.
func TestConsumersSwitchAtDifferentMoments(t *testing.T) {
	src, db, clk := setup(t)
	cs := []*consumer{newConsumer(t, src, "db"), newConsumer(t, src, "db"), newConsumer(t, src, "db")}
	w := &revokeWatch{fakeDB: db, clk: clk, consumers: cs, key: memKey("db")}
	var logs syncBuffer
	notify, promoted := promotedAt(clk)
	a := newAgent(t, src, w, clk, "a", notify,
		rotate.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		rotate.WithPollInterval(5*time.Second), rotate.WithOverlapDeadline(10*time.Minute),
		rotate.WithConsumers(rotate.Consumers{
			Endpoints: rotate.StaticEndpoints(cs[0].url(), cs[1].url(), cs[2].url()),
			Key:       memKey,
		}))
	s := &schedule{t: t, cs: cs, offsets: []time.Duration{0, 45 * time.Second, 2 * time.Minute}, promoted: promoted}
	if _, err := runDriven(t, clk, s.before, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, src, db, "db")
	at, behind := w.revokedAt()
	if len(behind) > 0 {
		t.Fatalf("revoked while %v did not serve the new version", behind)
	}
	last := s.done[2]
	if at.Before(last) || at.After(last.Add(5*time.Second)) {
		t.Fatalf("revoked at %v after the promotion; the last consumer switched at %v, the poll is 5s",
			at.Sub(promoted()), last.Sub(promoted()))
	}
	out := logs.String()
	for _, want := range []string{"rotation waits for consumers to serve the new version", "still serves version", cs[2].srv.URL} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "initial-password") {
		t.Fatal("the log holds a value")
	}
}

// TestConsumersDoNotShortenTheOverlap: consumers that switch at once do not
// let the agent revoke before the overlap of 3 × TTL.
func TestConsumersDoNotShortenTheOverlap(t *testing.T) {
	src, db, clk := setup(t)
	cs := []*consumer{newConsumer(t, src, "db"), newConsumer(t, src, "db")}
	w := &revokeWatch{fakeDB: db, clk: clk, consumers: cs, key: memKey("db")}
	notify, promoted := promotedAt(clk)
	a := newAgent(t, src, w, clk, "a", notify, rotate.WithConsumers(rotate.Consumers{
		Endpoints: rotate.StaticEndpoints(cs[0].url(), cs[1].url()), Key: memKey,
	}))
	s := &schedule{t: t, cs: cs, offsets: []time.Duration{0, 0}, promoted: promoted}
	if _, err := runDriven(t, clk, s.before, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	at, behind := w.revokedAt()
	if len(behind) > 0 {
		t.Fatalf("revoked while %v did not serve the new version", behind)
	}
	if got := at.Sub(promoted()); got < 30*time.Second {
		t.Fatalf("revoked %v after the promotion, inside the overlap of 30s", got)
	}
}

// TestConsumerNeverSwitchesRevokedAtDeadline: one consumer never picks the
// new version up, one endpoint is down and one answers a hostile document;
// the agent waits to the deadline, then revokes with a warning naming each
// and why, as it does when sessions of the old credential remain.
func TestConsumerNeverSwitchesRevokedAtDeadline(t *testing.T) {
	src, db, clk := setup(t)
	good, stuck := newConsumer(t, src, "db"), newConsumer(t, src, "db")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"keys": {"mem://db": "initial-password"}}`)
	}))
	defer hostile.Close()
	w := &revokeWatch{fakeDB: db, clk: clk, consumers: []*consumer{good, stuck}, key: memKey("db")}
	var logs syncBuffer
	notify, promoted := promotedAt(clk)
	a := newAgent(t, src, w, clk, "a", notify,
		rotate.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		rotate.WithPollInterval(10*time.Second), rotate.WithOverlapDeadline(5*time.Minute),
		rotate.WithConsumers(rotate.Consumers{
			Endpoints: rotate.StaticEndpoints(good.url(), stuck.url(), down.URL+"/status", hostile.URL),
			Key:       memKey,
		}))
	s := &schedule{t: t, cs: []*consumer{good, stuck}, offsets: []time.Duration{0, -1}, promoted: promoted}
	if _, err := runDriven(t, clk, s.before, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, src, db, "db")
	at, behind := w.revokedAt()
	if got := at.Sub(promoted()); got < 5*time.Minute {
		t.Fatalf("revoked %v after the promotion, before the deadline, with a consumer behind", got)
	}
	if len(behind) != 1 || behind[0] != stuck.url() {
		t.Fatalf("at the deadline, consumers behind: %v, want the stuck one", behind)
	}
	var warning string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "deadline passed with consumers") {
			warning = l
		}
	}
	for _, want := range []string{stuck.srv.URL, "still serves version", down.URL, "unreachable", hostile.URL, "not a status document", "waiting=3"} {
		if !strings.Contains(warning, want) {
			t.Errorf("the deadline warning does not say %q: %s", want, warning)
		}
	}
	if strings.Contains(logs.String(), "initial-password") {
		t.Fatal("the log holds a value (the hostile document's)")
	}
}

// TestConsumerWaitResumesAfterAStop: an agent stopped while it waits for a
// consumer leaves the rotation promoted; another agent takes it over after
// a lease, waits a full overlap from its takeover and for the consumer,
// and only then revokes.
func TestConsumerWaitResumesAfterAStop(t *testing.T) {
	src, db, clk := setup(t)
	c := newConsumer(t, src, "db")
	w := &revokeWatch{fakeDB: db, clk: clk, consumers: []*consumer{c}, key: memKey("db")}
	cons := rotate.WithConsumers(rotate.Consumers{Endpoints: rotate.StaticEndpoints(c.url()), Key: memKey})
	notify, promoted := promotedAt(clk)
	var logs syncBuffer
	a := newAgent(t, src, w, clk, "a", notify, cons, rotate.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, stop := context.WithCancel(ctxT(t))
	defer stop()
	_, err := runDriven(t, clk, func(now time.Time) {
		if p := promoted(); !p.IsZero() && now.Sub(p) >= 40*time.Second {
			stop() // past the overlap, the consumer still behind
		}
	}, func() (rotate.Report, error) { return a.Rotate(ctx, "db") })
	if !errors.Is(err, rotate.ErrUnfinished) {
		t.Fatalf("the stopped agent: %v, want ErrUnfinished", err)
	}
	if !strings.Contains(logs.String(), "rotation waits for consumers") {
		t.Fatalf("the first agent did not wait for the consumer:\n%s", logs.String())
	}
	if rec, _ := src.LoadRotation(ctxT(t), "db"); rec.Step != secrets.StepPromoted {
		t.Fatalf("the record is at %s, want promoted", rec.Step)
	}
	if n := db.revoked; n != 0 {
		t.Fatalf("revoked %d times before the consumer switched", n)
	}

	var mu sync.Mutex
	var resumed time.Time
	b := newAgent(t, src, w, clk, "b", cons, rotate.WithNotify(func(_ context.Context, e rotate.Event) {
		if e.Kind == rotate.EventResumed {
			mu.Lock()
			resumed = clk.Now()
			mu.Unlock()
		}
	}))
	var switched time.Time
	rep, err := runDriven(t, clk, func(now time.Time) {
		mu.Lock()
		r := resumed
		mu.Unlock()
		if !r.IsZero() && switched.IsZero() && now.Sub(r) >= 50*time.Second {
			c.pickUp(t)
			switched = now
		}
	}, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
	if err != nil || !rep.Resumed {
		t.Fatalf("the second agent: %+v, %v", rep, err)
	}
	at, behind := w.revokedAt()
	if len(behind) > 0 || at.Before(switched) {
		t.Fatalf("revoked at %v, the consumer switched at %v (behind: %v)", at, switched, behind)
	}
	if at.Sub(resumed) < 30*time.Second {
		t.Fatalf("revoked %v after the takeover, inside a full overlap", at.Sub(resumed))
	}
	checkAgree(t, src, db, "db")
}

// TestConsumerCheck asks endpoints of every kind once and checks the reason
// given for each, and that no message holds a value, user information or
// a query.
func TestConsumerCheck(t *testing.T) {
	src := memory.New()
	src.Set("db", "first-value")
	old, _ := src.Fetch(ctxT(t), "db")
	behind := newConsumer(t, src, "db")
	src.Set("other-key", "x")
	other := newConsumer(t, src, "other-key")
	src.Set("db", "second-value")
	cur, _ := src.Fetch(ctxT(t), "db")
	current := newConsumer(t, src, "db")
	field := newConsumer(t, src, "db") // a second Store, also on the new version
	_ = field

	serve := func(code int, body string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(s.Close)
		return s
	}
	doc := func(version string, loaded bool) string {
		return fmt.Sprintf(`{"healthy":false,"keys":[{"key":"mem://db#/x","loaded":%v,"version":%q}]}`, loaded, version)
	}
	long := strings.Repeat("v", 10000) + "\nlevel=ERROR forged"
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	withCreds, _ := url.Parse(behind.srv.URL + "/status-of-a-server-behind-a-proxy")
	withCreds.User = url.UserPassword("ops", "hunter2-basic")
	withCreds.RawQuery = "token=sekrit-query"

	cases := []struct {
		name   string
		url    string
		reason error // nil: serves the new version
	}{
		{"current", current.url(), nil},
		{"unhealthy 503 with a document", serve(http.StatusServiceUnavailable, doc(cur.Current.Version(), true)).URL, nil},
		{"behind", behind.url(), rotate.ErrConsumerBehind},
		{"key missing", other.url(), rotate.ErrConsumerKeyMissing},
		{"not loaded", serve(http.StatusOK, doc("", false)).URL, rotate.ErrConsumerKeyMissing},
		{"another version", serve(http.StatusOK, doc(long, true)).URL, rotate.ErrConsumerMismatch},
		{"html", serve(http.StatusOK, "<html>first-value</html>").URL, rotate.ErrConsumerMalformed},
		{"wrong types", serve(http.StatusOK, `{"keys":"first-value"}`).URL, rotate.ErrConsumerMalformed},
		{"no keys", serve(http.StatusOK, `{"healthy":true}`).URL, rotate.ErrConsumerMalformed},
		{"too large", serve(http.StatusOK, `{"keys":[],"pad":"`+strings.Repeat("x", rotate.MaxStatusDocument)+`"}`).URL, rotate.ErrConsumerMalformed},
		{"404", serve(http.StatusNotFound, "first-value").URL, rotate.ErrConsumerStatus},
		{"503 without a document", serve(http.StatusServiceUnavailable, "<html>busy</html>").URL, rotate.ErrConsumerStatus},
		{"down", down.URL + "/status", rotate.ErrConsumerUnreachable},
		{"credentials in the URL", withCreds.String(), rotate.ErrConsumerBehind},
		{"not http", "ftp://ops:hunter2-basic@example.com/status", rotate.ErrConsumerList},
	}
	var urls []string
	byURL := map[string]error{}
	for _, c := range cases {
		urls = append(urls, c.url)
		byURL[c.url] = c.reason
	}
	cons := rotate.Consumers{Endpoints: rotate.StaticEndpoints(urls...), Key: memKey}
	err := cons.Check(ctxT(t), "db", cur.Current, old.Current)
	var ce *rotate.ConsumersError
	if !errors.As(err, &ce) {
		t.Fatalf("Check: %v, want a *ConsumersError", err)
	}
	if ce.Total != len(cases) || ce.Want != cur.Current.Version() {
		t.Fatalf("Total %d Want %q", ce.Total, ce.Want)
	}
	got := map[string]*rotate.ConsumerError{}
	for _, w := range ce.Waiting {
		got[w.Endpoint] = w
		msg := w.Error()
		if strings.ContainsAny(msg, "\n\r") || len(msg) > 1500 {
			t.Errorf("%s: the message is not one bounded line (%d bytes)", w.Endpoint, len(msg))
		}
		for _, leak := range []string{"first-value", "second-value", "hunter2", "sekrit"} {
			if strings.Contains(msg, leak) {
				t.Errorf("the message holds %q: %s", leak, msg)
			}
		}
	}
	for _, c := range cases {
		w := got[redacted(c.url)]
		switch {
		case c.reason == nil && w != nil:
			t.Errorf("%s: counted as not switched: %v", c.name, w)
		case c.reason != nil && w == nil:
			t.Errorf("%s: counted as switched", c.name)
		case c.reason != nil && !errors.Is(w, c.reason):
			t.Errorf("%s: %v, want reason %v", c.name, w, c.reason)
		}
	}
	for _, reason := range []error{rotate.ErrConsumerBehind, rotate.ErrConsumerMalformed, rotate.ErrConsumerUnreachable} {
		if !errors.Is(err, reason) {
			t.Errorf("errors.Is(err, %v) = false through the *ConsumersError", reason)
		}
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%d of %d consumers", len(ce.Waiting), len(cases))) || strings.Contains(msg, "hunter2") {
		t.Errorf("summary: %s", msg)
	}

	// Every consumer on the new version: nil.
	ok := rotate.Consumers{Endpoints: rotate.StaticEndpoints(current.url(), field.url(), current.url()), Key: memKey}
	if err := ok.Check(ctxT(t), "db", cur.Current, old.Current); err != nil {
		t.Fatalf("all switched: %v", err)
	}
}

// redacted is how a ConsumerError names an endpoint: without user
// information, query or fragment.
func redacted(raw string) string {
	u, _ := url.Parse(raw)
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// TestConsumerCheckCannotRun: a list that fails or is empty, and a version
// mapping that fails, count every consumer as not switched.
func TestConsumerCheckCannotRun(t *testing.T) {
	src := memory.New()
	src.Set("db", `{"password":"p1"}`)
	v, _ := src.Fetch(ctxT(t), "db")
	c := newConsumer(t, src, "db")
	for name, cons := range map[string]rotate.Consumers{
		"list fails":   {Endpoints: func(context.Context) ([]string, error) { return nil, errors.New("the API server is down") }},
		"empty list":   {Endpoints: rotate.StaticEndpoints()},
		"no endpoints": {},
	} {
		err := cons.Check(ctxT(t), "db", v.Current, secrets.Secret{})
		if name != "no endpoints" && !errors.Is(err, rotate.ErrConsumerList) {
			t.Errorf("%s: %v, want ErrConsumerList", name, err)
		}
		if err == nil {
			t.Errorf("%s: nil", name)
		}
	}
	bad := rotate.Consumers{Endpoints: rotate.StaticEndpoints(c.url()), Key: memKey, Version: rotate.ContentVersionOf("user")}
	err := bad.Check(ctxT(t), "db", v.Current, secrets.Secret{})
	var ce *rotate.ConsumersError
	if !errors.As(err, &ce) || ce.Err == nil || !errors.Is(err, secrets.ErrInvalid) || strings.Contains(err.Error(), "p1") {
		t.Fatalf("a mapping to a missing field: %v", err)
	}
	if _, err := rotate.New(src, &fakeDB{}, time.Minute, rotate.WithConsumers(rotate.Consumers{})); err == nil {
		t.Fatal("WithConsumers without Endpoints was accepted")
	}
}

// TestContentVersionOf: the ids match those the file source gives a file
// holding the value, or one field of it.
func TestContentVersionOf(t *testing.T) {
	s := secrets.NewSecretString("k", "7", `{"username":"app","password":"p<w>&d"}`)
	if got, _ := rotate.ContentVersionOf("")(s); got != secrets.ContentVersion([]byte(`{"username":"app","password":"p<w>&d"}`)) {
		t.Fatalf("whole value: %s", got)
	}
	if got, _ := rotate.ContentVersionOf("password")(s); got != secrets.ContentVersion([]byte("p<w>&d")) {
		t.Fatalf("field: %s", got)
	}
}

// TestResolvedEndpoints: one URL per address the name resolves to, the
// port and path kept; a bad URL is refused at once.
func TestResolvedEndpoints(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		if host != "mcp-status.apps.svc.cluster.local" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []string{"10.0.0.7", "10.0.0.5", "fd00::5", "10.0.0.5"}, nil
	}
	list, err := rotate.ResolvedEndpoints("http://mcp-status.apps.svc.cluster.local:9090/status", lookup)
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(ctxT(t))
	want := []string{"http://10.0.0.5:9090/status", "http://10.0.0.7:9090/status", "http://[fd00::5]:9090/status"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	noPort, _ := rotate.ResolvedEndpoints("https://mcp-status.apps.svc.cluster.local/status", lookup)
	if got, _ := noPort(ctxT(t)); got[2] != "https://[fd00::5]/status" {
		t.Fatalf("without a port: %v", got)
	}
	if _, err := rotate.ResolvedEndpoints("mcp-status:9090", nil); err == nil {
		t.Fatal("a URL without a scheme was accepted")
	}
	// The system resolver, on an address literal.
	real, _ := rotate.ResolvedEndpoints("http://127.0.0.1:9090/status", nil)
	if got, err := real(ctxT(t)); err != nil || len(got) != 1 || got[0] != "http://127.0.0.1:9090/status" {
		t.Fatalf("system resolver: %v, %v", got, err)
	}
}

// TestConsumersWithConcurrentRotations rotates several keys at once, each
// by its own agent, all asking the same consumers, whose Stores serve every
// key and pick each up when it is promoted: every rotation finishes, and
// each revokes only once every consumer serves its new version.
func TestConsumersWithConcurrentRotations(t *testing.T) {
	clk := fakeclock.New(t0)
	src := memory.New()
	keys := []string{"k0", "k1", "k2", "k3"}
	for _, k := range keys {
		src.Set(k, "initial-"+k)
	}
	cs := []*consumer{newConsumer(t, src, keys...), newConsumer(t, src, keys...)}
	cons := rotate.WithConsumers(rotate.Consumers{Endpoints: rotate.StaticEndpoints(cs[0].url(), cs[1].url()), Key: memKey})
	type rot struct {
		db *fakeDB
		w  *revokeWatch
		a  *rotate.Agent
	}
	var rots []rot
	for i, k := range keys {
		db := &fakeDB{accepted: "initial-" + k}
		w := &revokeWatch{fakeDB: db, clk: clk, consumers: cs, key: memKey(k)}
		a := newAgent(t, src, w, clk, fmt.Sprint("agent-", i), cons, rotate.WithNotify(func(ctx context.Context, e rotate.Event) {
			if e.Kind == rotate.EventPromoted && i%2 == 0 {
				for _, c := range cs {
					_ = c.store.Refresh(ctx, memKey(k))
				}
			}
		}))
		rots = append(rots, rot{db, w, a})
	}
	// The odd keys' consumers pick up on their own, later.
	before := func(now time.Time) {
		if now.Sub(t0) >= 90*time.Second {
			for _, c := range cs {
				_ = c.store.Refresh(ctxT(t), memKey("k1"), memKey("k3"))
			}
		}
	}
	_, err := runDriven(t, clk, before, func() (struct{}, error) {
		var wg sync.WaitGroup
		errs := make([]error, len(keys))
		for i, k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = rots[i].a.Rotate(ctxT(t), k)
			}()
		}
		wg.Wait()
		return struct{}{}, errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		checkAgree(t, src, rots[i].db, k)
		at, behind := rots[i].w.revokedAt()
		if at.IsZero() || len(behind) > 0 {
			t.Errorf("%s: revoked at %v with %v behind", k, at, behind)
		}
		if i%2 == 1 && at.Sub(t0) < 90*time.Second {
			t.Errorf("%s: revoked %v after the start, before its consumers picked it up", k, at.Sub(t0))
		}
	}
}
