package smtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// A Request is one HTTP request the server received, as WithRequestLog
// records it: what a load test needs to draw the rate of requests over time,
// per client and per operation.
type Request struct {
	// Op is the operation, as Calls counts it.
	Op string
	// SecretIDs are the secrets the request names: its SecretId, the Name
	// of CreateSecret, or the SecretIdList of BatchGetSecretValue; none for
	// a request that names no secret or whose body cannot be decoded.
	SecretIDs []string
	// UserAgent is the request's User-Agent header. The SDK appends
	// "app/<AppID>" to it when aws.Config.AppID is set, which tells the
	// clients of one server apart.
	UserAgent string
	// Time is when the request was counted, on the server's clock (see
	// WithClock).
	Time time.Time
	// Throttled reports that a quota (WithQuota) answered the request with
	// ThrottlingException. A Throttle fault does not set it.
	Throttled bool
}

// WithRequestLog makes the server record every request it counts, in the
// order it counted them; Requests returns the record. The record grows with
// every request until ResetRequests, so it is meant for a test of bounded
// length.
func WithRequestLog() Option { return func(s *Server) { s.traffic.logging = true } }

// A Quota is a rate limit shared by one or more operations, as the quotas of
// Secrets Manager are (each is "per Region", for the whole account): at
// most PerSecond requests a second for the operations together.
//
// The server keeps a token bucket per quota that holds one second's worth of
// requests and refills continuously on the server's clock. A request that
// finds it empty is answered HTTP 400 ThrottlingException ("Rate exceeded"),
// as AWS answers a request beyond its quota, before any fault or the
// operation runs, and takes no token. AWS documents the rates, not the shape
// of its limiter: a burst of one second's worth at once is this server's
// assumption.
type Quota struct {
	// Ops are the operations the quota limits together, as in Fault.Op.
	Ops []string
	// PerSecond is the rate, at least 1.
	PerSecond int
}

// AWSQuotas returns the default request quotas of Secrets Manager that apply
// to the operations this server implements, as AWS documents them in "AWS
// Secrets Manager quotas" (per Region; none adjustable):
// BatchGetSecretValue 100 a second; GetSecretValue 10,000 and DescribeSecret
// 40,000 (the rates of March 2025; before, the two shared 10,000); and
// PutSecretValue, UpdateSecret and UpdateSecretVersionStage 50 together.
func AWSQuotas() []Quota {
	return []Quota{
		{Ops: []string{"BatchGetSecretValue"}, PerSecond: 100},
		{Ops: []string{"GetSecretValue"}, PerSecond: 10_000},
		{Ops: []string{"DescribeSecret"}, PerSecond: 40_000},
		{Ops: []string{"PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage"}, PerSecond: 50},
	}
}

// WithQuota limits the rate of requests of the operations of each quota (see
// Quota); WithQuota(AWSQuotas()...) throttles as AWS does by default. An
// operation limited by two quotas takes a token from each and is throttled
// when either is empty. Requests throttled by a quota are counted by Calls
// like any other, and marked in the request log.
//
// WithQuota panics if a quota is malformed (no operation, an unknown one, or
// PerSecond below 1): that is a mistake in the test, not a condition to
// handle.
func WithQuota(quotas ...Quota) Option {
	for _, q := range quotas {
		if err := q.validate(); err != nil {
			panic("smtest: WithQuota: " + err.Error())
		}
	}
	return func(s *Server) {
		for _, q := range quotas {
			s.traffic.buckets = append(s.traffic.buckets, &bucket{
				ops:  slices.Clone(q.Ops),
				rate: float64(q.PerSecond),
			})
		}
	}
}

func (q Quota) validate() error {
	if len(q.Ops) == 0 {
		return fmt.Errorf("a quota without operations")
	}
	for _, op := range q.Ops {
		if _, ok := knownOperations[op]; !ok {
			return fmt.Errorf("unknown operation %q (use the name without the %q prefix)", op, targetPrefix)
		}
	}
	if q.PerSecond < 1 {
		return fmt.Errorf("PerSecond %d for %v: must be at least 1", q.PerSecond, q.Ops)
	}
	return nil
}

// Requests returns a copy of the requests recorded since the server started
// or since ResetRequests, oldest first; nil without WithRequestLog.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.traffic.log)
	for i := range out {
		out[i].SecretIDs = slices.Clone(out[i].SecretIDs)
	}
	return out
}

// ResetRequests empties the request log. The quotas' buckets are left as
// they are.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traffic.log = nil
}

// Throttled returns how many requests the quotas have answered with
// ThrottlingException since the server started.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.traffic.throttled
}

// traffic is the request log and the quotas of a Server, guarded by its mu.
type traffic struct {
	logging   bool
	log       []Request
	buckets   []*bucket
	throttled int
}

// A bucket is the token bucket of one Quota.
type bucket struct {
	ops    []string
	rate   float64 // tokens a second, and the capacity
	tokens float64
	last   time.Time // when tokens was last brought up to date; zero: full
}

// refill brings the bucket's tokens up to date at now. A clock that goes
// back adds nothing.
func (b *bucket) refill(now time.Time) {
	switch {
	case b.last.IsZero():
		b.tokens = b.rate
		b.last = now
	case now.After(b.last):
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// throttleAnswer is what a request over its quota meets in place of the
// faults: a Throttle that answers "Rate exceeded".
var throttleAnswer = &activeFault{Fault: Fault{Kind: Throttle}, remaining: -1}

// meterLocked records a request in the log and applies the quotas of op. It
// returns the fault that answers a throttled request, nil otherwise. The
// caller holds s.mu.
func (s *Server) meterLocked(r *http.Request, op string, ids []string) *activeFault {
	t := &s.traffic
	if !t.logging && len(t.buckets) == 0 {
		return nil
	}
	now := s.now()
	var take []*bucket
	throttled := false
	for _, b := range t.buckets {
		if slices.Contains(b.ops, op) {
			b.refill(now)
			throttled = throttled || b.tokens < 1
			take = append(take, b)
		}
	}
	if throttled {
		t.throttled++
	} else {
		for _, b := range take {
			b.tokens--
		}
	}
	if t.logging {
		t.log = append(t.log, Request{
			Op:        op,
			SecretIDs: slices.Clone(ids),
			UserAgent: r.Header.Get("User-Agent"),
			Time:      now,
			Throttled: throttled,
		})
	}
	if throttled {
		return throttleAnswer
	}
	return nil
}
