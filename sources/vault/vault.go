package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Defaults of the options.
const (
	// DefaultMaxRetries is how many times the source's copy of the client
	// retries a request that failed with a 5xx status, a 412 or 429, or a
	// connection error: once, for a dropped connection or a lone 500.
	// Retrying longer is the Store's job, with its own backoff.
	DefaultMaxRetries = 1
	// DefaultMaxRetryWait caps the wait before that retry; the wait is drawn
	// between half of it and all of it.
	DefaultMaxRetryWait = 250 * time.Millisecond
)

// Fixed limits of the token lifecycle.
const (
	// loginTimeout bounds one login through the AuthMethod, and the lookup
	// of the client's token at first use.
	loginTimeout = time.Minute
	// renewTimeout bounds one renewal call of the token watcher, and so how
	// long Close may wait for a renewal in flight.
	renewTimeout = 15 * time.Second
	// reloginBackoffMin and reloginBackoffMax bound the waits between the
	// attempts of a background login that failed.
	reloginBackoffMin = time.Second
	reloginBackoffMax = time.Minute
)

// Source reads secrets from the KV secrets engines (versions 1 and 2) and
// the database secrets engine of a HashiCorp Vault server. It implements
// secrets.Source and secrets.ChangeDetector, and for KV v2 keys the write
// side of rotation:
// secrets.Stager, secrets.PreviousRemover and secrets.RotationRecorder (see
// Rotation in the package documentation). It is safe for concurrent use.
// Close stops the token renewal it runs in the background.
//
// For the database engine it holds the lease of each dynamic role's pair
// and renews it from the fetches the Store makes at the times the source
// gives it (see Database secrets engine in the package documentation).
type Source struct {
	base         *api.Client // a clone of the caller's client; never sends a request itself
	token0       string      // the caller's client token at New
	auth         api.AuthMethod
	log          *slog.Logger
	onEvent      func(TokenEvent)
	maxRetries   int
	maxRetryWait time.Duration
	declared     map[string]int // mount path → KV version (or engineDatabase), from WithMount and WithDatabaseMount
	db           *dbState       // the database secrets engine: options, dynamic credentials held

	mountsMu sync.RWMutex
	mounts   map[string]int // detected: mount path → KV version, or engineDatabase

	sess   atomic.Pointer[session]
	flight singleflight.Group // "session": the one login (or first lookup) in flight

	emitMu sync.Mutex // serialises onEvent

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed, and wg.Add against Close's Wait
	closed bool
	wg     sync.WaitGroup
}

var (
	_ secrets.Source         = (*Source)(nil)
	_ secrets.ChangeDetector = (*Source)(nil)
)

// An Option configures a Source.
type Option func(*Source) error

// WithMount declares that a KV secrets engine of the given version (1 or 2)
// is mounted at path ("secret", "team/kv"). Keys under a declared mount are
// read without asking Vault where their mount is and which version it runs,
// so the token needs no access to sys/internal/ui/mounts. WithMount may be
// given once per mount; keys under other mounts are still detected.
func WithMount(path string, version int) Option {
	return func(s *Source) error {
		p := strings.Trim(path, "/")
		if p == "" || !validPath(p) {
			return fmt.Errorf("vault: WithMount(%s): not a mount path", keyquote.Quote(path))
		}
		if version != 1 && version != 2 {
			return fmt.Errorf("vault: WithMount(%s, %d): version must be 1 or 2", keyquote.Quote(path), version)
		}
		s.declared[p] = version
		return nil
	}
}

// WithAuth sets the auth method the source logs in with: at first use when
// the client has no token, when the token can no longer be renewed (it
// reached its maximum TTL, or it is not renewable and about to expire), and
// when Vault rejects the token as invalid (expired or revoked). Typical
// methods are AppRole (github.com/hashicorp/vault/api/auth/approle) and
// Kubernetes (github.com/hashicorp/vault/api/auth/kubernetes).
//
// Without WithAuth the source uses the client's token as it is: it renews it
// while Vault allows, and once it expires every request fails with
// secrets.ErrPermission.
func WithAuth(method api.AuthMethod) Option {
	return func(s *Source) error {
		if method == nil {
			return errors.New("vault: WithAuth(nil)")
		}
		s.auth = method
		return nil
	}
}

// WithLogger sets the logger for the token lifecycle: logins, renewals that
// end, failures. Records carry key paths, TTLs and errors, never a token, an
// accessor or a value. By default the source logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(s *Source) error {
		if l == nil {
			return errors.New("vault: WithLogger(nil)")
		}
		s.log = l
		return nil
	}
}

// WithTokenEvents sets a function that the source calls on each event of its
// token's lifecycle (see TokenEvent), for metrics, health checks and tests.
// Calls are made one at a time, from the source's own goroutines; fn must
// return quickly and must not call the Source.
func WithTokenEvents(fn func(TokenEvent)) Option {
	return func(s *Source) error {
		if fn == nil {
			return errors.New("vault: WithTokenEvents(nil)")
		}
		s.onEvent = fn
		return nil
	}
}

// WithMaxRetries sets how many times a failed request is retried by the
// source's copy of the client (default DefaultMaxRetries, 1), whatever the
// caller's client was configured with. 0 disables the client's retries. The
// client retries what its CheckRetry policy says (by default: connection
// errors, 412, 429 and 5xx except 501).
func WithMaxRetries(n int) Option {
	return func(s *Source) error {
		if n < 0 {
			return fmt.Errorf("vault: WithMaxRetries(%d): must not be negative", n)
		}
		s.maxRetries = n
		return nil
	}
}

// WithMaxRetryWait caps the wait before a retry (default
// DefaultMaxRetryWait, 250ms); each wait is drawn at random between half
// the cap and the cap. A Retry-After header does not lengthen it.
func WithMaxRetryWait(d time.Duration) Option {
	return func(s *Source) error {
		if d <= 0 {
			return fmt.Errorf("vault: WithMaxRetryWait(%v): must be positive", d)
		}
		s.maxRetryWait = d
		return nil
	}
}

// New returns a Source that reads through a copy of client.
//
// The copy (api.Client.CloneWithHeaders) keeps the client's address, HTTP
// client and TLS settings, timeout, rate limiter, headers and namespace, and
// takes the client's token as it is now. The source sets its own retry bound
// on the copy (WithMaxRetries, WithMaxRetryWait) and logs in and renews on
// the copy, so the caller's client is never changed, and later changes to it
// (a new token, a new address) do not reach the source. Request and response
// callbacks (api.Client.WithRequestCallbacks) are not carried over.
//
// New does no I/O: the token is looked up, or a login made, at the first
// Fetch.
func New(client *api.Client, opts ...Option) (*Source, error) {
	if client == nil {
		return nil, errors.New("vault: New: nil client")
	}
	s := &Source{
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		maxRetries:   DefaultMaxRetries,
		maxRetryWait: DefaultMaxRetryWait,
		declared:     map[string]int{},
		mounts:       map[string]int{},
		db:           newDBState(),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	base, err := client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault: New: copying the client: %w", err)
	}
	base.ClearToken() // NewClient, under Clone, reads VAULT_TOKEN
	base.SetMaxRetries(s.maxRetries)
	base.SetMinRetryWait(s.maxRetryWait / 2)
	base.SetMaxRetryWait(s.maxRetryWait)
	base.SetBackoff(uniformBackoff)
	s.base = base
	s.token0 = client.Token()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// NewFromEnv builds a client from the environment, as the vault command
// does (api.DefaultConfig and api.NewClient read VAULT_ADDR, VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT,
// VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_CLIENT_TIMEOUT and the others
// the api package documents), and returns a Source over it. With no
// VAULT_TOKEN set, pass WithAuth, or run behind a Vault Agent or Proxy that
// adds the token itself.
func NewFromEnv(opts ...Option) (*Source, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault: reading the environment: %w", cfg.Error)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault: building a client from the environment: %w", err)
	}
	return New(client, opts...)
}

// Close stops the source's background work: the renewal of its token and any
// login in flight. It waits for them to return; a renewal call in flight is
// bounded by 15 seconds. Tokens the source logged in for are not revoked;
// they expire with their TTL. Nor are the leases of dynamic database
// credentials, unless WithRevokeOnClose says so: then Close first revokes
// them (15 seconds at most, all told) and returns the failures it met. After
// Close, Fetch, FetchIfChanged and the writes fail with an error wrapping
// secrets.ErrClosed. A second Close does nothing and returns nil.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.revokeLeases()
	s.cancel()
	s.wg.Wait()
	return err
}

// enter registers work that Close waits for, unless the source is closed.
func (s *Source) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// clientWith returns a new copy of the base client that sends token ("" for
// none). Copies share the caller's HTTP client and so its connection pool.
func (s *Source) clientWith(token string) (*api.Client, error) {
	c, err := s.base.CloneWithHeaders()
	if err != nil {
		return nil, err
	}
	if token == "" {
		c.ClearToken()
	} else {
		c.SetToken(token)
	}
	return c, nil
}

// uniformBackoff waits between min and max, ignoring Retry-After: the
// source's retries are short on purpose.
func uniformBackoff(lo, hi time.Duration, _ int, _ *http.Response) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo)
}
