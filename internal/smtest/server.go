package smtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

const (
	defaultRegion    = "us-east-1"
	defaultAccountID = "123456789012"
)

// ErrClosed is returned by WaitForCalls when the server closes while it
// waits.
var ErrClosed = errors.New("smtest: server closed")

// Server is a fake AWS Secrets Manager on a loopback httptest server. All its
// methods are safe for concurrent use, with each other and with the requests
// it serves.
type Server struct {
	// URL is the base URL of the server, "http://127.0.0.1:port". It is the
	// BaseEndpoint of Config.
	URL string

	region    string
	accountID string
	now       func() time.Time

	hs        *httptest.Server
	transport *http.Transport
	closing   chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	secrets map[string]*secret // by name
	seq     uint64
	faults  []*activeFault
	calls   map[string]int
	total   int
	changed chan struct{} // closed and replaced when a call is counted
	traffic traffic       // request log and quotas (traffic.go)
}

// An Option configures a Server.
type Option func(*Server)

// WithRegion sets the region of the server: the Region of Config and the
// region part of ARNs. The default is "us-east-1".
func WithRegion(region string) Option { return func(s *Server) { s.region = region } }

// WithAccountID sets the account part of ARNs. The default is
// "123456789012".
func WithAccountID(id string) Option { return func(s *Server) { s.accountID = id } }

// WithClock makes the server take the time from now: creation and change
// dates, and when a scheduled deletion becomes permanent. The default is
// time.Now. Pass the Now method of a fake clock to move through a recovery
// window without waiting.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New starts a server on a loopback address. The caller must call Close.
// Tests should prefer NewServer, which closes the server when the test ends.
func New(opts ...Option) *Server {
	s := &Server{
		region:    defaultRegion,
		accountID: defaultAccountID,
		now:       time.Now,
		closing:   make(chan struct{}),
		secrets:   make(map[string]*secret),
		calls:     make(map[string]int),
		changed:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.Proxy = nil // loopback: never through an HTTP_PROXY
	return s
}

// NewServer starts a server on a loopback address and closes it when tb and
// its subtests end.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server. It lets requests held by Latency and Hold faults
// end (their connections are closed without an answer), waits for every
// request to finish, and closes the idle connections of the clients made with
// Config, so no goroutine of the server or of those clients outlives it.
// Close is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.hs.Close()
		s.transport.CloseIdleConnections()
	})
}

// Config returns an aws.Config for a client of this server, ready for
// secretsmanager.NewFromConfig: the server's region, static credentials,
// BaseEndpoint set to URL, an HTTP client whose connections Close closes, and
// a retryer that makes a single attempt, so a fault reaches the caller at
// once. A test of retries sets its own Retryer on the returned value; each
// call returns a new Config.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region: s.region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{
				AccessKeyID:     "AKIDSMTEST",
				SecretAccessKey: "smtest-secret-access-key",
				Source:          "smtest",
			}, nil
		}),
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   &http.Client{Transport: s.transport},
		Retryer: func() aws.Retryer {
			return retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		},
	}
}

// Client returns a new client of this server made from Config.
func (s *Server) Client(optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(s.Config(), optFns...)
}

// Calls returns how many HTTP requests the server has received, by
// operation (the X-Amz-Target without its "secretsmanager." prefix; a request
// without the header counts under ""). Every request counts, also those that a
// fault broke and those for unknown operations; seeding methods such as Put
// do not count.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// CallCount returns how many requests for op the server has received.
func (s *Server) CallCount(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// TotalCalls returns how many requests the server has received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCalls sets every count to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	s.total = 0
}

// WaitForCalls waits until the server has received at least n requests for
// op (for any operation if op is ""), counted since the last ResetCalls. A
// request counts once its body is read, in the same step that chooses the
// faults it meets: when WaitForCalls returns, the requests it counted that
// match a Hold fault are held. It returns ctx.Err() if ctx is done first, and
// ErrClosed if the server closes.
func (s *Server) WaitForCalls(ctx context.Context, op string, n int) error {
	for {
		s.mu.Lock()
		got := s.total
		if op != "" {
			got = s.calls[op]
		}
		changed := s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// Seeding and inspection. These methods change or read the state directly:
// they are not requests, so they are neither counted nor subject to faults.

// Put stores value as a new version of the secret name, creating the secret
// if there is none, and returns the new version's id. The version gets the
// given staging labels, AWSCURRENT if none, with the rules of PutSecretValue:
// a label moves from the version that had it, AWSCURRENT moving gives
// AWSPREVIOUS to the version it left, and the first version of a secret gets
// AWSCURRENT in any case. Put works on a secret scheduled for deletion too,
// and leaves it scheduled.
func (s *Server) Put(name, value string, stages ...string) (versionID string) {
	return s.put(name, &value, nil, stages)
}

// PutBinary is Put for a binary value (SecretBinary).
func (s *Server) PutBinary(name string, value []byte, stages ...string) (versionID string) {
	if value == nil {
		value = []byte{}
	}
	return s.put(name, nil, value, stages)
}

func (s *Server) put(name string, str *string, bin []byte, stages []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	sec := s.secrets[name]
	if sec == nil {
		sec = s.createSecret(name, now)
	}
	id := newUUID()
	sec.newVersion(id, str, bin, slices.Compact(slices.Sorted(slices.Values(stages))), now)
	return id
}

// ARN returns the ARN of the secret name, or "" if there is none.
func (s *Server) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	if sec := s.secrets[name]; sec != nil {
		return sec.arn
	}
	return ""
}

// Stages returns the staging labels of the secret's versions, as
// DescribeSecret's VersionIdsToStages: version id to sorted labels, versions
// without labels (deprecated) left out. It returns nil if there is no secret
// with that name or ARN; an empty map if it has no labelled version.
func (s *Server) Stages(secretID string) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	sec := s.resolve(secretID)
	if sec == nil {
		return nil
	}
	m := sec.versionsToStages()
	if m == nil {
		m = map[string][]string{}
	}
	return m
}

// A Version is a snapshot of one version of a secret.
type Version struct {
	// ID is the version id (VersionId).
	ID string
	// SecretString is the string value; empty for a binary secret.
	SecretString string
	// SecretBinary is the binary value; nil for a string secret.
	SecretBinary []byte
	// Stages are the staging labels, sorted; none for a deprecated version.
	Stages []string
	// Created is when the version was stored, on the server's clock.
	Created time.Time
}

// Versions returns every version of the secret (name or ARN), deprecated
// ones included, oldest first; nil if there is no such secret. The fake
// keeps every version: unlike AWS it never deletes deprecated ones.
func (s *Server) Versions(secretID string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	sec := s.resolve(secretID)
	if sec == nil {
		return nil
	}
	out := make([]Version, 0, len(sec.order))
	for _, id := range sec.order {
		v := sec.versions[id]
		sv := Version{ID: id, Stages: slices.Clone(v.stages), Created: v.created, SecretBinary: slices.Clone(v.bin)}
		if v.str != nil {
			sv.SecretString = *v.str
		}
		out = append(out, sv)
	}
	return out
}

// Remove deletes the secret (name or ARN) at once, as DeleteSecret with
// ForceDeleteWithoutRecovery does, and reports whether there was one.
func (s *Server) Remove(secretID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	sec := s.resolve(secretID)
	if sec == nil {
		return false
	}
	delete(s.secrets, sec.name)
	return true
}

// Serving.

type opFunc func(s *Server, body []byte, now time.Time) (any, *awsError)

var operations = map[string]opFunc{
	"CreateSecret":             (*Server).createSecretOp,
	"GetSecretValue":           (*Server).getSecretValueOp,
	"PutSecretValue":           (*Server).putSecretValueOp,
	"UpdateSecret":             (*Server).updateSecretOp,
	"UpdateSecretVersionStage": (*Server).updateSecretVersionStageOp,
	"DescribeSecret":           (*Server).describeSecretOp,
	"BatchGetSecretValue":      (*Server).batchGetSecretValueOp,
	"DeleteSecret":             (*Server).deleteSecretOp,
	"RestoreSecret":            (*Server).restoreSecretOp,
	"ListSecrets":              (*Server).listSecretsOp,
	"ListSecretVersionIds":     (*Server).listSecretVersionIDsOp,
	"RotateSecret":             (*Server).rotateSecretOp,
	"CancelRotateSecret":       (*Server).cancelRotateSecretOp,
	"GetRandomPassword":        (*Server).getRandomPasswordOp,
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	target := r.Header.Get("X-Amz-Target")
	op, prefixed := strings.CutPrefix(target, targetPrefix)
	if !prefixed {
		op = target
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		s.countAndPlan(r, op, nil)
		abort(w) // the client went away mid-request
		return
	}

	ids := requestSecretIDs(op, body)
	if !s.applyFaults(w, r, requestID, op, ids, s.countAndPlan(r, op, ids)) {
		return
	}

	fn := operations[op]
	switch {
	case r.Method != http.MethodPost:
		writeError(w, requestID, &awsError{http.StatusMethodNotAllowed, "MethodNotAllowedException",
			"AWS JSON 1.1 requests must use POST"})
		return
	case !prefixed || fn == nil:
		msg := "The operation " + target + " is not supported."
		if _, ok := knownOperations[op]; ok && prefixed {
			msg = "smtest: this server does not serve " + op + ", an operation of the real service"
		}
		writeError(w, requestID, &awsError{http.StatusBadRequest, "UnknownOperationException", msg})
		return
	case len(body) > maxRequestBody:
		writeError(w, requestID, &awsError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			"Request body is too large"})
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}

	s.mu.Lock()
	now := s.now()
	s.sweep(now)
	resp, aerr := fn(s, body, now)
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, requestID, aerr)
		return
	}
	writeJSON(w, requestID, http.StatusOK, resp)
}

// countAndPlan counts a request and picks the faults it meets, in one step:
// once WaitForCalls has seen a request, its faults are chosen, and a Hold
// fault that matched it holds it. A request over its quota (WithQuota) meets
// a throttle instead of any fault.
func (s *Server) countAndPlan(r *http.Request, op string, ids []string) []*activeFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	s.total++
	close(s.changed)
	s.changed = make(chan struct{})
	if f := s.meterLocked(r, op, ids); f != nil {
		return []*activeFault{f}
	}
	return s.plan(op, ids)
}

// applyFaults runs the faults that the request meets. It returns false if
// they answered the request or ended it.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, requestID, op string, ids []string, plan []*activeFault) bool {
	for _, f := range plan {
		switch f.Kind {
		case Latency:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				abort(w)
				return false
			case <-s.closing:
				t.Stop()
				abort(w)
				return false
			}
		case Hold:
			select {
			case <-f.release:
			case <-r.Context().Done():
				abort(w)
				return false
			case <-s.closing:
				abort(w)
				return false
			}
		case DropConnection:
			abort(w)
			return false
		default:
			id := ""
			if len(ids) == 1 {
				id = ids[0]
			}
			writeError(w, requestID, f.response(op, id, s.accountID))
			return false
		}
	}
	return true
}

// abort closes the connection of the request without an answer.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): net/http resets the stream, silently.
	panic(http.ErrAbortHandler)
}

// requestSecretIDs returns the secrets a request is about, for the
// SecretID of faults: its SecretId, the Name of CreateSecret, or the
// SecretIdList of BatchGetSecretValue.
func requestSecretIDs(op string, body []byte) []string {
	var req struct {
		SecretID     *string  `json:"SecretId"`
		Name         *string  `json:"Name"`
		SecretIDList []string `json:"SecretIdList"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	switch {
	case op == "CreateSecret" && req.Name != nil:
		return []string{*req.Name}
	case op == "BatchGetSecretValue":
		return req.SecretIDList
	case req.SecretID != nil:
		return []string{*req.SecretID}
	}
	return nil
}
