package awssm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
	"github.com/rotorhq/rotor/sources/awssm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// canary is a value no error may quote.
const canary = "canary-0b9d5c2e-never-in-an-error"

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSource returns a fake Secrets Manager and a source over the real SDK
// client of it.
func newSource(t testing.TB, opts ...awssm.Option) (*smtest.Server, *awssm.Source) {
	t.Helper()
	srv := smtest.NewServer(t)
	src, err := awssm.New(srv.Client(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return srv, src
}

// newStore returns a Store over src on a fake clock, with every key due at
// the same time (no jitter).
func newStore(t testing.TB, src secrets.Source, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(epoch)
	opts = append([]secrets.Option{
		secrets.WithSource("awssm", src),
		secrets.WithClock(clk),
		secrets.WithTTL(time.Minute),
		secrets.WithJitter(0),
	}, opts...)
	st, err := secrets.New(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, clk
}

// waitStatuses waits, without sleeping, until cond holds for the statuses of
// keys. The Store re-arms its timer on the fake clock after every round,
// which wakes the wait.
func waitStatuses(t testing.TB, st *secrets.Store, clk *fakeclock.Clock, keys []string, cond func(secrets.KeyStatus) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last secrets.KeyStatus
	err := clk.WaitFor(ctx, func([]time.Time) bool {
		for _, k := range keys {
			s, ok := st.Status(k)
			if !ok || !cond(s) {
				last = s
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("waiting for the Store: %v; last status seen: %+v", err, last)
	}
}

// refreshedAt reports a key whose last refresh succeeded at at.
func refreshedAt(at time.Time) func(secrets.KeyStatus) bool {
	return func(s secrets.KeyStatus) bool {
		return s.Loaded && s.Failures == 0 && s.FetchedAt.Equal(at)
	}
}

// noLeak fails if err's text holds the canary.
func noLeak(t testing.TB, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error quotes a secret value: %v", err)
	}
}

// harness drives the fake through the SDK client, as an operator would.
type harness struct {
	client *secretsmanager.Client
	key    func(name string) string
}

func (h harness) Key(name string) string { return h.key(name) }

func (h harness) Set(ctx context.Context, name, value string) error {
	_, err := h.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = h.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretString: aws.String(value),
		})
	}
	return err
}

func (h harness) Delete(ctx context.Context, name string) error {
	_, err := h.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	return err
}

func TestConformance(t *testing.T) {
	partialARN := func(srv *smtest.Server) func(string) string {
		return func(name string) string {
			return "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name
		}
	}
	byName := func(*smtest.Server) func(string) string { return func(name string) string { return name } }
	for _, tc := range []struct {
		name string
		key  func(*smtest.Server) func(string) string
		opts []awssm.Option
	}{
		{"ByName", byName, nil},
		{"ByPartialARN", partialARN, nil},
		{"WithoutBatch", byName, []awssm.Option{awssm.WithBatch(false)}},
		{"NoSDKRetries", byName, []awssm.Option{awssm.WithMaxAttempts(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Config{
				New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
					srv, src := newSource(t, tc.opts...)
					return src, harness{client: srv.Client(), key: tc.key(srv)}
				},
				KeepsPrevious: true,
			})
		})
	}
}
