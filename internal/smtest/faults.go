package smtest

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// A FaultKind says how a Fault breaks the requests it matches.
type FaultKind int

const (
	// Throttle answers HTTP 400 ThrottlingException, which the SDK's standard
	// retryer classifies as a retryable throttling error. ThrottlingException
	// is not a modeled Secrets Manager error: the SDK returns it as a generic
	// smithy.APIError with ErrorCode "ThrottlingException".
	Throttle FaultKind = iota + 1

	// InternalError answers HTTP 500 InternalServiceError, which the SDK
	// returns as *types.InternalServiceError (retryable by its status).
	InternalError

	// Unavailable answers a 5xx status (Fault.Status, default 503) with the
	// error code ServiceUnavailable, as an overloaded AWS front end does.
	Unavailable

	// AccessDenied answers HTTP 400 AccessDeniedException, what Secrets
	// Manager says when IAM or a resource policy denies the call. It is not a
	// modeled error: the SDK returns a generic smithy.APIError. In
	// BatchGetSecretValue a fault scoped to a secret (Fault.SecretID) becomes
	// an entry of the response's Errors instead.
	AccessDenied

	// DecryptionFailure answers HTTP 400 DecryptionFailure, what Secrets
	// Manager says when KMS refuses to decrypt the value; the SDK returns
	// *types.DecryptionFailure. Scoped to a secret, it becomes an entry of
	// Errors in BatchGetSecretValue.
	DecryptionFailure

	// ErrorResponse answers any error: Fault.Code is the exception name
	// (required), Fault.Status the HTTP status (default 400), Fault.Message
	// the text. Scoped to a secret, it becomes an entry of Errors in
	// BatchGetSecretValue.
	ErrorResponse

	// Latency delays the request by Fault.Delay, then lets it go on to the
	// next matching fault or to its normal answer. The wait ends early, with
	// the connection closed and no answer, when the request's context is
	// done (the client gave up) or the server closes.
	Latency

	// DropConnection reads the request, then closes the connection without
	// answering: the client sees a transport error, not an API error.
	DropConnection

	// Hold keeps matching requests waiting until the fault is removed (with
	// the function AddFault returned, or ClearFaults), then lets them go on.
	// The wait ends early, with the connection closed and no answer, when the
	// request's context is done or the server closes. Together with
	// WaitForCalls it lets a test put requests in flight deterministically,
	// for instance to check that concurrent misses collapse into one call.
	// When Count is set, it limits how many requests are held; they all stay
	// held until the fault is removed.
	Hold
)

var kindNames = map[FaultKind]string{
	Throttle:          "Throttle",
	InternalError:     "InternalError",
	Unavailable:       "Unavailable",
	AccessDenied:      "AccessDenied",
	DecryptionFailure: "DecryptionFailure",
	ErrorResponse:     "ErrorResponse",
	Latency:           "Latency",
	DropConnection:    "DropConnection",
	Hold:              "Hold",
}

// String returns the name of the constant, e.g. "Throttle".
func (k FaultKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// perSecret reports whether a fault of this kind, scoped to one secret,
// becomes an entry of Errors in BatchGetSecretValue rather than failing the
// whole call: the errors a single secret can have (AWS names
// AccessDeniedException and DecryptionFailure in the documentation of
// APIErrorType).
func (k FaultKind) perSecret() bool {
	return k == AccessDenied || k == DecryptionFailure || k == ErrorResponse
}

// A Fault breaks the requests that match it until it is removed or has fired
// Count times. Faults are checked in the order they were added, after the
// request is counted and its body read and before the operation runs: a
// request broken by a fault changes no state. Latency and Hold faults wait
// and then pass the request on to the next matching fault; any other kind
// answers the request and ends it.
type Fault struct {
	// Op is the operation to break, as in the X-Amz-Target header without
	// its "secretsmanager." prefix, e.g. "GetSecretValue". Empty means every
	// operation.
	Op string

	// SecretID limits the fault to requests about one secret: its name, full
	// ARN or partial ARN, compared with the request's SecretId (the Name of
	// CreateSecret, the SecretIdList of BatchGetSecretValue) after both are
	// resolved to a secret. Empty means every request. In
	// BatchGetSecretValue, AccessDenied, DecryptionFailure and ErrorResponse
	// scoped to a secret fail that secret alone, as an entry of Errors, also
	// when the secrets are chosen by Filters.
	SecretID string

	// Kind is how the fault breaks a request. Required.
	Kind FaultKind

	// Count is how many requests the fault breaks before it removes itself.
	// Zero means until it is removed.
	Count int

	// Delay is how long a Latency fault delays a request.
	Delay time.Duration

	// Status is the HTTP status of Unavailable (default 503) and of
	// ErrorResponse (default 400).
	Status int

	// Code is the exception name ("__type") that ErrorResponse answers.
	Code string

	// Message replaces the default text of an error kind.
	Message string
}

// activeFault is an added Fault and its bookkeeping, guarded by Server.mu.
type activeFault struct {
	Fault
	remaining int // requests left to break; < 0 means no limit
	exhausted bool
	release   chan struct{} // closed when the fault is removed
	once      sync.Once
}

func (f *activeFault) close() { f.once.Do(func() { close(f.release) }) }

// AddFault adds a fault and returns a function that removes it. Removing a
// fault that has already gone (it fired Count times, or ClearFaults ran) does
// nothing; the function is safe to call more than once. AddFault is safe for
// concurrent use, also while requests are being served; a request that is
// already past the fault check is not affected.
//
// AddFault panics if the fault is malformed (unknown Kind or Op, an
// ErrorResponse without Code, a negative Count or Delay): that is a mistake
// in the test, not a condition to handle.
func (s *Server) AddFault(f Fault) (remove func()) {
	if err := f.validate(); err != nil {
		panic("smtest: AddFault: " + err.Error())
	}
	af := &activeFault{Fault: f, remaining: f.Count, release: make(chan struct{})}
	if f.Count == 0 {
		af.remaining = -1
	}
	s.mu.Lock()
	s.faults = append(s.faults, af)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.faults = slices.DeleteFunc(s.faults, func(x *activeFault) bool { return x == af })
		s.mu.Unlock()
		af.close()
	}
}

// ClearFaults removes every fault and lets the requests held by Hold faults
// go on. It is safe for concurrent use.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	faults := s.faults
	s.faults = nil
	s.mu.Unlock()
	for _, f := range faults {
		f.close()
	}
}

func (f Fault) validate() error {
	if _, ok := kindNames[f.Kind]; !ok {
		return fmt.Errorf("unknown Kind %d", int(f.Kind))
	}
	if f.Op != "" {
		if _, ok := knownOperations[f.Op]; !ok {
			return fmt.Errorf("unknown operation %q (use the name without the %q prefix)", f.Op, targetPrefix)
		}
	}
	if f.Count < 0 {
		return fmt.Errorf("negative Count %d", f.Count)
	}
	if f.Delay < 0 {
		return fmt.Errorf("negative Delay %v", f.Delay)
	}
	if f.Kind == ErrorResponse && f.Code == "" {
		return fmt.Errorf("ErrorResponse needs a Code")
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("invalid Status %d", f.Status)
	}
	return nil
}

// response returns the error answer of an error kind.
func (f *Fault) response(op, secretID, accountID string) *awsError {
	e := &awsError{status: http.StatusBadRequest}
	switch f.Kind {
	case Throttle:
		e.code, e.message = "ThrottlingException", "Rate exceeded"
	case InternalError:
		e.status, e.code, e.message = http.StatusInternalServerError, "InternalServiceError", "An error occurred on the server side."
	case Unavailable:
		e.status, e.code, e.message = http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable"
	case AccessDenied:
		resource := secretID
		if resource == "" {
			resource = "*"
		}
		e.code = "AccessDeniedException"
		e.message = fmt.Sprintf("User: arn:aws:iam::%s:user/smtest is not authorized to perform: secretsmanager:%s on resource: %s because no identity-based policy allows the secretsmanager:%s action",
			accountID, op, resource, op)
	case DecryptionFailure:
		e.code, e.message = "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."
	case ErrorResponse:
		e.code, e.message = f.Code, f.Code
	}
	if f.Status != 0 {
		e.status = f.Status
	}
	if f.Message != "" {
		e.message = f.Message
	}
	return e
}

// consume records that f fired once. The caller holds s.mu.
func (s *Server) consume(f *activeFault) {
	if f.remaining < 0 {
		return
	}
	f.remaining--
	if f.remaining > 0 {
		return
	}
	f.exhausted = true
	if f.Kind != Hold {
		// A Hold fault stays listed so that removing it, or ClearFaults,
		// still releases the requests it holds.
		s.faults = slices.DeleteFunc(s.faults, func(x *activeFault) bool { return x == f })
		f.close()
	}
}

// matchesSecret reports whether the fault's SecretID names the same secret
// as one of ids. The caller holds s.mu.
func (s *Server) matchesSecret(f *activeFault, ids []string) bool {
	if f.SecretID == "" {
		return true
	}
	for _, id := range ids {
		if s.sameSecret(f.SecretID, id) {
			return true
		}
	}
	return false
}

func (s *Server) sameSecret(a, b string) bool {
	if a == b {
		return true
	}
	sa, sb := s.resolve(a), s.resolve(b)
	return sa != nil && sa == sb
}

// plan picks the faults that a request meets, in order, consuming one firing
// of each: the Latency and Hold faults it waits on, then at most one that
// answers it. The caller holds s.mu.
func (s *Server) plan(op string, ids []string) []*activeFault {
	var out []*activeFault
	for _, f := range slices.Clone(s.faults) {
		if f.exhausted || (f.Op != "" && f.Op != op) {
			continue
		}
		if op == "BatchGetSecretValue" && f.SecretID != "" && f.Kind.perSecret() {
			continue // applied to the matching secrets, one by one
		}
		if !s.matchesSecret(f, ids) {
			continue
		}
		s.consume(f)
		out = append(out, f)
		if f.Kind != Latency && f.Kind != Hold {
			break
		}
	}
	return out
}

// secretFault returns the per-secret fault that fails secret sec in a
// BatchGetSecretValue call, consuming one firing, or nil. The caller holds
// s.mu.
func (s *Server) secretFault(sec *secret) *activeFault {
	for _, f := range s.faults {
		if f.exhausted || f.SecretID == "" || !f.Kind.perSecret() ||
			(f.Op != "" && f.Op != "BatchGetSecretValue") {
			continue
		}
		if s.resolve(f.SecretID) == sec || f.SecretID == sec.name || f.SecretID == sec.arn {
			s.consume(f)
			return f
		}
	}
	return nil
}

// knownOperations are the operations of Secrets Manager 2017-10-17; AddFault
// accepts them as Fault.Op even when this server does not implement them.
var knownOperations = map[string]struct{}{
	"BatchGetSecretValue": {}, "CancelRotateSecret": {}, "CreateSecret": {},
	"DeleteResourcePolicy": {}, "DeleteSecret": {}, "DescribeSecret": {},
	"GetRandomPassword": {}, "GetResourcePolicy": {}, "GetSecretValue": {},
	"ListSecrets": {}, "ListSecretVersionIds": {}, "PutResourcePolicy": {},
	"PutSecretValue": {}, "RemoveRegionsFromReplication": {},
	"ReplicateSecretToRegions": {}, "RestoreSecret": {}, "RotateSecret": {},
	"StopReplicationToReplica": {}, "TagResource": {}, "UntagResource": {},
	"UpdateSecret": {}, "UpdateSecretVersionStage": {},
	"ValidateResourcePolicy": {},
}
