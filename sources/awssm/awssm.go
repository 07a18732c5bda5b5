package awssm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/secrets"
)

// API is the part of *secretsmanager.Client that the source calls. A
// *secretsmanager.Client satisfies it, and so does any wrapper of one (for
// metrics, tracing or a test double). The source passes its own per-call
// options (see WithMaxAttempts); an implementation that is not the SDK client
// may ignore them.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	BatchGetSecretValue(ctx context.Context, in *secretsmanager.BatchGetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

var _ API = (*secretsmanager.Client)(nil)

// Defaults of the options.
const (
	// DefaultMaxAttempts is how many HTTP attempts the SDK makes per API
	// call: one retry for a dropped connection or a lone 500. Retrying
	// longer is the Store's job, with its own backoff.
	DefaultMaxAttempts = 2
	// DefaultMaxRetryDelay caps the SDK's wait before that retry.
	DefaultMaxRetryDelay = 250 * time.Millisecond
	// DefaultConcurrency bounds the API calls one FetchMany makes at once.
	DefaultConcurrency = 4
	// MaxBatchSize is how many secrets one BatchGetSecretValue call may
	// name, a limit of the API.
	MaxBatchSize = 20
)

// Source reads secrets from AWS Secrets Manager. It implements
// secrets.Source, secrets.ChangeDetector and secrets.BatchFetcher. It holds
// no goroutine and no connection of its own (the client does), so it needs
// no Close. A Source is safe for concurrent use.
type Source struct {
	client        API
	maxAttempts   int
	maxRetryDelay time.Duration
	concurrency   int
	batch         bool

	// batchOff is set once BatchGetSecretValue has been refused as a whole
	// (no IAM permission for it, or an endpoint that lacks it): from then
	// on FetchMany polls each secret with DescribeSecret.
	batchOff atomic.Bool
	// describeOff is set once DescribeSecret has been refused while
	// GetSecretValue was allowed: from then on polls use GetSecretValue.
	describeOff atomic.Bool

	// recordName names the secret that holds a key's rotation record,
	// from the key's secret name (see WithRecordName).
	recordName func(name string) string
	// names caches the secret name of keys given as ARNs, for records.
	names sync.Map // string -> string
}

var (
	_ secrets.Source         = (*Source)(nil)
	_ secrets.ChangeDetector = (*Source)(nil)
	_ secrets.BatchFetcher   = (*Source)(nil)
)

// An Option configures a Source.
type Option func(*Source) error

// WithMaxAttempts sets how many HTTP attempts the SDK makes for each API call
// the source issues (default DefaultMaxAttempts, 2). It is applied per call,
// whatever retryer the client was built with, so that a failing backend
// reaches the Store quickly and the Store's backoff governs the pace of
// retries. 1 disables the SDK's retries; 0 leaves the client's own setting
// (3 attempts for a default client) and its backoff alone.
func WithMaxAttempts(n int) Option {
	return func(s *Source) error {
		if n < 0 {
			return fmt.Errorf("awssm: WithMaxAttempts(%d): must not be negative", n)
		}
		s.maxAttempts = n
		return nil
	}
}

// WithMaxRetryDelay caps how long the SDK waits before retrying a failed
// attempt (default DefaultMaxRetryDelay, 250ms; the SDK's own cap is 20s). It
// has no effect with WithMaxAttempts(0) or (1).
func WithMaxRetryDelay(d time.Duration) Option {
	return func(s *Source) error {
		if d <= 0 {
			return fmt.Errorf("awssm: WithMaxRetryDelay(%v): must be positive", d)
		}
		s.maxRetryDelay = d
		return nil
	}
}

// WithConcurrency bounds how many API calls one FetchMany has in flight
// (default DefaultConcurrency, 4): its BatchGetSecretValue calls, and the
// per-secret calls that follow them.
func WithConcurrency(n int) Option {
	return func(s *Source) error {
		if n < 1 {
			return fmt.Errorf("awssm: WithConcurrency(%d): must be at least 1", n)
		}
		s.concurrency = n
		return nil
	}
}

// WithBatch turns the use of BatchGetSecretValue on (the default) or off.
// Off, FetchMany polls each secret with DescribeSecret as FetchIfChanged
// does: one call per secret instead of one per twenty, against a quota 400
// times higher, and the IAM policy needs no secretsmanager:BatchGetSecretValue.
func WithBatch(on bool) Option {
	return func(s *Source) error {
		s.batch = on
		return nil
	}
}

// New returns a Source that calls Secrets Manager through client, typically
// secretsmanager.NewFromConfig(cfg) with the program's own aws.Config. The
// client's region must be the region of the secrets the source reads.
func New(client API, opts ...Option) (*Source, error) {
	if client == nil {
		return nil, errors.New("awssm: New: nil client")
	}
	s := &Source{
		client:        client,
		maxAttempts:   DefaultMaxAttempts,
		maxRetryDelay: DefaultMaxRetryDelay,
		concurrency:   DefaultConcurrency,
		batch:         true,
		recordName:    DefaultRecordName,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewFromDefaultConfig loads the default AWS configuration chain
// (environment, shared config and credentials files, web identity, ECS and
// EC2 instance roles), builds a Secrets Manager client from it and returns a
// Source over that client. It fails when no region is configured. A program
// that already has an aws.Config should call New with
// secretsmanager.NewFromConfig(cfg) instead.
func NewFromDefaultConfig(ctx context.Context, opts ...Option) (*Source, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("awssm: loading the default AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("awssm: no AWS region configured (set AWS_REGION or a profile's region)")
	}
	return New(secretsmanager.NewFromConfig(cfg), opts...)
}
