package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Defaults and limits of the consumer check (see Consumers).
const (
	// DefaultConsumerTimeout bounds one request to a status endpoint when
	// Consumers.Timeout is zero: 5 seconds.
	DefaultConsumerTimeout = 5 * time.Second
	// MaxStatusDocument is the largest status document read from an
	// endpoint: 4 MiB, room for tens of thousands of keys. A larger answer
	// is ErrConsumerMalformed.
	MaxStatusDocument = 4 << 20
	// consumerParallel is how many endpoints one check asks at once.
	consumerParallel = 32
)

// The reasons a consumer is not counted as serving the new version, found
// with errors.Is through a *ConsumerError (and through a *ConsumersError,
// which wraps one per consumer).
var (
	// ErrConsumerList: the endpoints could not be listed (Consumers.Endpoints
	// failed), the list was empty, or it held something that is not an
	// absolute http or https URL. An empty list counts as a failure, not as
	// "every consumer switched": a selector that matches nothing more likely
	// names the wrong pods than no pods.
	ErrConsumerList = errors.New("the consumers cannot be listed")
	// ErrConsumerUnreachable: the request failed (connection refused, a
	// name that does not resolve, TLS, the timeout).
	ErrConsumerUnreachable = errors.New("unreachable")
	// ErrConsumerStatus: the endpoint answered an HTTP status other than
	// 200, or 503 without a status document (secrets.Store.StatusHandler
	// answers 503 with its document when the Store is unhealthy; that
	// document is read as any other).
	ErrConsumerStatus = errors.New("unexpected HTTP status")
	// ErrConsumerMalformed: the answer is not a status document: not JSON,
	// fields of the wrong type, no "keys" list, or larger than
	// MaxStatusDocument.
	ErrConsumerMalformed = errors.New("not a status document")
	// ErrConsumerKeyMissing: the document has no entry for the key, or the
	// consumer has not loaded it (see Consumers.Key).
	ErrConsumerKeyMissing = errors.New("key not served")
	// ErrConsumerBehind: the consumer still serves the version the rotation
	// replaced.
	ErrConsumerBehind = errors.New("still serves the replaced version")
	// ErrConsumerMismatch: the consumer serves a version that is neither the
	// promoted one nor the replaced one: another change came meanwhile, or
	// Consumers.Version does not describe how the consumer reads the value.
	ErrConsumerMismatch = errors.New("serves another version")
)

// Consumers names the servers that read a rotated key, so that the Agent
// revokes the old credential only once every one of them serves the new
// version. Each server publishes its Store's state with
// secrets.Store.StatusHandler; the Agent reads every endpoint's
// secrets.StatusDocument and looks up the key's version there. Documents
// hold version ids, never values.
type Consumers struct {
	// Endpoints lists the URLs of the consumers' status endpoints (absolute
	// http or https URLs). It is called at every poll, so a list resolved
	// from a Kubernetes label selector or a DNS name follows instances that
	// come and go. It may be called concurrently for different keys, and
	// must honour ctx. Required; StaticEndpoints and ResolvedEndpoints make
	// common ones.
	Endpoints func(ctx context.Context) ([]string, error)

	// Key maps the key the Agent rotates to the key under which the
	// consumers' Stores report it: the Agent may rotate "db.json" of a
	// file source while a server reads it as
	// "file:///var/run/secrets/app/db.json", or "secret/app/db" while a
	// server reads "vault://secret/app/db". An entry of the document
	// matches when its key is the mapped one or a field of it (the mapped
	// key followed by "#"): all fields of a secret share its fetch and its
	// version. nil means the Agent's key as it is.
	Key func(key string) string

	// Version maps the promoted value to the version id the consumers
	// report for it. nil means the id the Agent's source gave it, which is
	// right when the consumers read the value through the same kind of
	// source (rotor's file source on the same bytes, rotor's vault source on
	// the same secret). Consumers that read a copy the Agent's source does
	// not see (a Kubernetes Secret volume, a CSI mount, a file Vault Agent
	// renders) report the id of what they read: see ContentVersionOf. An
	// error stops no rotation: every consumer counts as not switched for
	// that poll, and the error is logged, so it must not hold the value.
	// Key and Version may be called concurrently, for different keys.
	Version func(promoted secrets.Secret) (string, error)

	// Client sends the requests; nil means http.DefaultClient. A redirect
	// to another host is not followed unless Client sets CheckRedirect: the
	// document must come from the consumer listed, not from one it points
	// at (a redirect answer counts as ErrConsumerStatus).
	Client *http.Client

	// Timeout bounds each request; zero means DefaultConsumerTimeout. It is
	// real time, not the Agent's clock: it bounds network I/O.
	Timeout time.Duration
}

// WithConsumers makes the overlap step wait, past the overlap (WithOverlap),
// until every consumer that c lists serves the promoted version of the key,
// as its status endpoint reports it, polling every poll interval
// (WithPollInterval) on the Agent's clock. The Agent revokes once the
// overlap has passed, the target reports the old credential out of use
// (Target.InUse) and every consumer serves the new version; or, as for
// InUse, once the overlap deadline (WithOverlapDeadline) has passed (the
// last poll falls on it), with a warning that sums up the consumers that
// had not switched and one for each of them, naming it and why. A consumer
// that is unreachable, answers an unexpected status or a malformed
// document, lacks the key, or serves another version counts as not
// switched; each poll logs why (a *ConsumersError), never a value.
//
// Nothing of the check is kept in memory across agents: an agent that
// resumes a rotation left in its overlap reads the promoted version from
// the store and checks the consumers again, with a full overlap counted
// from when it took the rotation over.
func WithConsumers(c Consumers) Option {
	return func(a *Agent) error {
		if c.Endpoints == nil {
			return errors.New("rotate: WithConsumers: Endpoints is nil")
		}
		if c.Timeout < 0 {
			return fmt.Errorf("rotate: WithConsumers: negative Timeout %v", c.Timeout)
		}
		a.consumers = &c
		return nil
	}
}

// StaticEndpoints returns an Endpoints function (for Consumers) that lists
// urls.
func StaticEndpoints(urls ...string) func(context.Context) ([]string, error) {
	list := slices.Clone(urls)
	return func(context.Context) ([]string, error) { return slices.Clone(list), nil }
}

// ResolvedEndpoints returns an Endpoints function (for Consumers) for
// rawURL, an http or https URL whose host name resolves to every consumer:
// the name of a Kubernetes headless Service resolves to the addresses of
// its pods. At each call it looks the name up with lookup (nil:
// net.DefaultResolver.LookupHost) and returns rawURL once per address, with
// the address in place of the name (the port, path and query kept). It
// fails at once when rawURL is not an absolute http or https URL.
//
// A headless Service lists only the pods that pass their readiness probe
// unless it sets publishNotReadyAddresses: set it, since a pod that is not
// ready may still hold the old credential.
//
// With https, each request goes to an address, so TLS verifies the
// consumer's certificate against that address: it must name the address
// (an IP SAN), or Consumers.Client must verify another name (its
// transport's TLSClientConfig.ServerName). A certificate naming only the
// Service makes every consumer ErrConsumerUnreachable.
func ResolvedEndpoints(rawURL string, lookup func(ctx context.Context, host string) ([]string, error)) (func(context.Context) ([]string, error), error) {
	u, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rotate: ResolvedEndpoints: %w", err)
	}
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	host, port := u.Hostname(), u.Port()
	return func(ctx context.Context) ([]string, error) {
		addrs, err := lookup(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", keyquote.Quote(host), err)
		}
		slices.Sort(addrs)
		out := make([]string, 0, len(addrs))
		for _, addr := range slices.Compact(addrs) {
			v := *u
			switch {
			case port != "":
				v.Host = net.JoinHostPort(addr, port)
			case strings.Contains(addr, ":"): // IPv6
				v.Host = "[" + addr + "]"
			default:
				v.Host = addr
			}
			out = append(out, v.String())
		}
		return out, nil
	}, nil
}

// ContentVersionOf returns a Version function (for Consumers) for consumers
// that read the value, or one field of it, as a file of their own and
// report the version id rotor's file source gives a file:
// secrets.ContentVersion of its content. With field "" it is the id of the
// whole value (a file holding the value byte for byte: a Kubernetes Secret
// key, a CSI mount of the whole secret, a Vault Agent template rendering
// the secret's data with toUnescapedJSON, which writes what the vault
// source reads); with a field name (or a JSON pointer, as
// secrets.Secret.Field takes it) it is the id of that field's value (a
// file holding one field: a CSI object with secretKey, a template that
// renders one field). A consumer whose file ends with a newline the value
// does not have must read it with the file source's WithTrimNewline.
func ContentVersionOf(field string) func(promoted secrets.Secret) (string, error) {
	return func(s secrets.Secret) (string, error) {
		if field != "" {
			f, err := s.Field(field)
			if err != nil {
				return "", err
			}
			s = f
		}
		b := s.Bytes()
		defer clear(b)
		return secrets.ContentVersion(b), nil
	}
}

// A ConsumerError says why one consumer does not count as serving the new
// version. It names the endpoint (without user information or query), the
// key looked up and the versions, never a value.
type ConsumerError struct {
	Endpoint string // the endpoint's URL, without user information, query or fragment
	Key      string // the key looked up in its document
	// Reason is ErrConsumerList, ErrConsumerUnreachable, ErrConsumerStatus,
	// ErrConsumerMalformed, ErrConsumerKeyMissing, ErrConsumerBehind or
	// ErrConsumerMismatch.
	Reason  error
	Status  int    // the HTTP status, for ErrConsumerStatus
	Version string // the version the consumer reports, for ErrConsumerBehind and ErrConsumerMismatch
	Want    string // the version it should serve
	Detail  string // what was wrong, in a few words (never the document's text)
	Err     error  // the cause, for ErrConsumerUnreachable; may be nil
}

// Error names the endpoint, the key and why it does not count.
func (e *ConsumerError) Error() string {
	if e == nil {
		return "rotate: <nil *ConsumerError>"
	}
	msg := "consumer " + keyquote.Quote(e.Endpoint)
	switch {
	case errors.Is(e.Reason, ErrConsumerStatus):
		msg += fmt.Sprintf(": answered HTTP %d", e.Status)
	case errors.Is(e.Reason, ErrConsumerBehind):
		msg += fmt.Sprintf(": still serves version %s of %s, the one being replaced (want %s)",
			keyquote.Quote(e.Version), keyquote.Quote(e.Key), keyquote.Quote(e.Want))
	case errors.Is(e.Reason, ErrConsumerMismatch):
		msg += fmt.Sprintf(": serves version %s of %s, neither the promoted %s nor the one replaced",
			keyquote.Quote(e.Version), keyquote.Quote(e.Key), keyquote.Quote(e.Want))
	case errors.Is(e.Reason, ErrConsumerKeyMissing):
		msg += fmt.Sprintf(": %s %s", e.Reason, keyquote.Quote(e.Key))
	case e.Reason != nil:
		msg += ": " + e.Reason.Error()
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	if e.Err != nil {
		msg += ": " + keyquote.Line(e.Err.Error(), keyquote.Max)
	}
	return msg
}

// Unwrap returns the reason and the cause.
func (e *ConsumerError) Unwrap() []error {
	if e == nil {
		return nil
	}
	var out []error
	if e.Reason != nil {
		out = append(out, e.Reason)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// A ConsumersError is the outcome of a check that did not find every
// consumer serving the new version: one *ConsumerError per consumer that
// does not, or Err when the check could not run at all (the endpoints could
// not be listed, Consumers.Version failed). errors.Is finds the reasons of
// all of them.
type ConsumersError struct {
	Key     string           // the key looked up in the documents
	Want    string           // the version they should serve
	Total   int              // the endpoints asked
	Waiting []*ConsumerError // those that do not serve Want, in the order listed
	Err     error            // a failure of the whole check
}

// Error summarizes the check: how many consumers do not serve the version,
// and why the first few do not.
func (e *ConsumersError) Error() string {
	if e == nil {
		return "rotate: <nil *ConsumersError>"
	}
	if e.Err != nil {
		return "consumers of " + keyquote.Quote(e.Key) + ": " + keyquote.Line(e.Err.Error(), 2*keyquote.Max)
	}
	const shown = 3
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d consumers do not serve version %s of %s yet", len(e.Waiting), e.Total,
		keyquote.Quote(e.Want), keyquote.Quote(e.Key))
	for i, w := range e.Waiting {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Waiting)-shown)
			break
		}
		b.WriteString("; ")
		b.WriteString(w.Error())
	}
	return b.String()
}

// Unwrap returns Err and every consumer's error.
func (e *ConsumersError) Unwrap() []error {
	if e == nil {
		return nil
	}
	var out []error
	if e.Err != nil {
		out = append(out, e.Err)
	}
	for _, w := range e.Waiting {
		out = append(out, w)
	}
	return out
}

// Check asks every consumer once whether it serves promoted, the value now
// current in the Agent's store for key (the Agent's key; Key maps it).
// replaced is the value the rotation replaced (zero if unknown), so that a
// consumer still on it is told apart from one on some other version. It
// returns nil when every listed consumer serves promoted, and otherwise a
// *ConsumersError. It asks up to 32 endpoints at once and returns when
// every request has ended; ctx bounds them all.
func (c Consumers) Check(ctx context.Context, key string, promoted, replaced secrets.Secret) error {
	if c.Endpoints == nil {
		return &ConsumersError{Key: key, Err: errors.New("rotate: Consumers.Endpoints is nil")}
	}
	ckey := key
	if c.Key != nil {
		ckey = c.Key(key)
	}
	want, err := c.version(promoted)
	if err != nil {
		return &ConsumersError{Key: ckey, Err: fmt.Errorf("the version consumers should serve: %w", err)}
	}
	var old string
	if !replaced.IsZero() {
		old, _ = c.version(replaced) // only names the reason
	}
	urls, err := c.Endpoints(ctx)
	if err != nil {
		return &ConsumersError{Key: ckey, Want: want, Err: fmt.Errorf("%w: %w", ErrConsumerList, err)}
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	if len(urls) == 0 {
		return &ConsumersError{Key: ckey, Want: want, Err: fmt.Errorf("%w: the list is empty", ErrConsumerList)}
	}
	results := make([]*ConsumerError, len(urls))
	var g errgroup.Group
	g.SetLimit(consumerParallel)
	for i, u := range urls {
		g.Go(func() error {
			results[i] = c.ask(ctx, u, ckey, want, old)
			return nil
		})
	}
	_ = g.Wait()
	out := &ConsumersError{Key: ckey, Want: want, Total: len(urls)}
	for _, r := range results {
		if r != nil {
			out.Waiting = append(out.Waiting, r)
		}
	}
	if len(out.Waiting) == 0 {
		return nil
	}
	return out
}

func (c Consumers) version(s secrets.Secret) (string, error) {
	if c.Version == nil {
		return s.Version(), nil
	}
	return c.Version(s)
}

// statusDocument is the part of a secrets.StatusDocument the check reads.
// Keys is a pointer so that a document without the list is told apart
// from one with an empty list.
type statusDocument struct {
	Keys *[]statusEntry `json:"keys"`
}

type statusEntry struct {
	Key     string `json:"key"`
	Loaded  bool   `json:"loaded"`
	Version string `json:"version"`
}

// ask asks one endpoint and returns nil when it serves want for key.
func (c Consumers) ask(ctx context.Context, rawURL, key, want, old string) *ConsumerError {
	fail := &ConsumerError{Endpoint: redactEndpoint(rawURL), Key: key, Want: want}
	u, err := parseEndpoint(rawURL)
	if err != nil {
		fail.Reason, fail.Detail = ErrConsumerList, err.Error()
		return fail
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultConsumerTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fail.Reason, fail.Detail = ErrConsumerList, "the request cannot be made"
		return fail
	}
	req.Header.Set("Accept", "application/json")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	if client.CheckRedirect == nil {
		own := *client
		own.CheckRedirect = sameHostRedirect
		client = &own
	}
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, query included; the endpoint is
		// named already, without it.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		fail.Reason, fail.Err = ErrConsumerUnreachable, err
		return fail
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxStatusDocument+1))
	if err != nil {
		fail.Reason, fail.Detail, fail.Err = ErrConsumerUnreachable, "the answer was cut off", err
		return fail
	}
	var doc statusDocument
	docErr := decodeStatus(body, &doc)
	switch {
	case resp.StatusCode == http.StatusOK && docErr != nil:
		fail.Reason, fail.Detail = ErrConsumerMalformed, docErr.Error()
		return fail
	case resp.StatusCode == http.StatusServiceUnavailable && docErr == nil:
		// An unhealthy Store still says what it serves.
	case resp.StatusCode != http.StatusOK:
		fail.Reason, fail.Status = ErrConsumerStatus, resp.StatusCode
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			fail.Detail = "a redirect, not followed"
		}
		return fail
	}
	found := false
	for _, e := range *doc.Keys {
		if e.Key != key && !strings.HasPrefix(e.Key, key+"#") {
			continue
		}
		found = true
		switch {
		case !e.Loaded || e.Version == "":
			fail.Reason, fail.Detail = ErrConsumerKeyMissing, "listed but not loaded"
			return fail
		case e.Version == want:
			continue
		case old != "" && e.Version == old:
			fail.Reason, fail.Version = ErrConsumerBehind, e.Version
			return fail
		default:
			fail.Reason, fail.Version = ErrConsumerMismatch, e.Version
			return fail
		}
	}
	if !found {
		fail.Reason, fail.Detail = ErrConsumerKeyMissing, "no such entry in its document"
		return fail
	}
	return nil
}

// sameHostRedirect follows a redirect only to the host of the first
// request, as http.Client does by default up to 10 times; a redirect to
// another host ends with the redirect as the answer.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

// decodeStatus decodes a status document. Its errors describe what is
// wrong in a few fixed words: the document's text never reaches a message.
func decodeStatus(body []byte, doc *statusDocument) error {
	if len(body) > MaxStatusDocument {
		return fmt.Errorf("larger than %d bytes", MaxStatusDocument)
	}
	if !json.Valid(body) {
		return errors.New("not JSON")
	}
	if err := json.Unmarshal(body, doc); err != nil {
		return errors.New("a field of the wrong type")
	}
	if doc.Keys == nil {
		return errors.New(`no "keys" list`)
	}
	return nil
}

// parseEndpoint parses an endpoint URL: absolute, http or https, with a
// host.
func parseEndpoint(rawURL string) (*neturl.URL, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an absolute http or https URL", keyquote.Quote(redactEndpoint(rawURL)))
	}
	return u, nil
}

// redactEndpoint returns rawURL without user information, query or
// fragment, which may hold credentials, for messages.
func redactEndpoint(rawURL string) string {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		// Keep what cannot hold a credential: nothing past the scheme.
		if scheme, _, ok := strings.Cut(rawURL, "://"); ok && !strings.ContainsAny(scheme, "@?#") {
			return scheme + "://..."
		}
		return "..."
	}
	v := neturl.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}
