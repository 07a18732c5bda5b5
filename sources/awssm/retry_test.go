package awssm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestSDKRetriesAreBounded: whatever retryer the client was built with, the
// source makes at most WithMaxAttempts attempts per call (2 by default) and
// waits at most WithMaxRetryDelay between them.
func TestSDKRetriesAreBounded(t *testing.T) {
	// A client that would retry ten times with waits of up to 20s.
	generous := func(o *secretsmanager.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 10 })
	}
	for _, tc := range []struct {
		name     string
		opts     []awssm.Option
		attempts int
	}{
		{"Default", nil, awssm.DefaultMaxAttempts},
		{"One", []awssm.Option{awssm.WithMaxAttempts(1)}, 1},
		{"Three", []awssm.Option{awssm.WithMaxAttempts(3), awssm.WithMaxRetryDelay(time.Millisecond)}, 3},
		{"ClientsOwn", []awssm.Option{awssm.WithMaxAttempts(0)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtest.NewServer(t)
			client := srv.Client(generous, func(o *secretsmanager.Options) {
				// Keep the client's own schedule quick for the 0 case.
				o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond)
			})
			src, err := awssm.New(client, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			srv.Put("r/key", "v")
			defer srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.InternalError})()
			start := time.Now()
			_, err = src.Fetch(ctxT(t), "r/key")
			elapsed := time.Since(start)
			if !errors.Is(err, secrets.ErrTransient) {
				t.Fatalf("err = %v", err)
			}
			if n := srv.CallCount("GetSecretValue"); n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			if tc.name == "Default" && elapsed > 5*awssm.DefaultMaxRetryDelay {
				t.Fatalf("one retry took %v; the wait is capped at %v", elapsed, awssm.DefaultMaxRetryDelay)
			}
		})
	}
}

// TestRetryRidesOverABlip: a lone dropped connection costs a retry, not a
// failed refresh.
func TestRetryRidesOverABlip(t *testing.T) {
	srv, src := newSource(t, awssm.WithMaxRetryDelay(time.Millisecond))
	srv.Put("blip", "v")
	defer srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.DropConnection, Count: 1})()
	v, err := src.Fetch(ctxT(t), "blip")
	if err != nil || v.Current.Reveal() != "v" {
		t.Fatalf("Fetch after one dropped connection: %v", err)
	}
	// DescribeSecret names the versions; the one version is read by id.
	if n := srv.CallCount("GetSecretValue"); n != 2 {
		t.Fatalf("%d GetSecretValue calls, want 2 (a dropped one, its retry)", n)
	}
}

func TestInvalidOptions(t *testing.T) {
	srv := smtest.NewServer(t)
	for _, o := range []awssm.Option{
		awssm.WithMaxAttempts(-1), awssm.WithMaxRetryDelay(0), awssm.WithConcurrency(0),
	} {
		if _, err := awssm.New(srv.Client(), o); err == nil {
			t.Error("an invalid option was accepted")
		}
	}
	if _, err := awssm.New(nil); err == nil {
		t.Error("New(nil) was accepted")
	}
}

func TestNewFromDefaultConfig(t *testing.T) {
	srv := smtest.NewServer(t)
	srv.Put("cfg/key", "from-the-default-chain")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := awssm.NewFromDefaultConfig(ctxT(t)); err == nil {
		t.Fatal("no region, yet NewFromDefaultConfig succeeded")
	}
	t.Setenv("AWS_REGION", "us-east-1")
	src, err := awssm.NewFromDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := src.Fetch(ctxT(t), "cfg/key")
	if err != nil || v.Current.Reveal() != "from-the-default-chain" {
		t.Fatalf("Fetch: %v", err)
	}
}
