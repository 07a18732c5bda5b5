package smtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rotorhq/rotor/internal/smtest"
)

func httpStatus(t *testing.T, err error) int {
	t.Helper()
	return errorAs[*awshttp.ResponseError](t, err).HTTPStatusCode()
}

func TestFaultKinds(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	srv.Put("db", "v")
	retryable := retry.NewStandard()

	for _, tc := range []struct {
		fault     smtest.Fault
		check     func(t *testing.T, err error)
		status    int
		retryable bool
	}{
		{
			fault: smtest.Fault{Kind: smtest.Throttle},
			check: func(t *testing.T, err error) {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" || ae.ErrorFault() == smithy.FaultServer {
					t.Errorf("error %v", err)
				}
			},
			status: 400, retryable: true,
		},
		{
			fault:  smtest.Fault{Kind: smtest.InternalError},
			check:  func(t *testing.T, err error) { errorAs[*types.InternalServiceError](t, err) },
			status: 500, retryable: true,
		},
		{
			fault: smtest.Fault{Kind: smtest.Unavailable},
			check: func(t *testing.T, err error) {
				if code := apiCode(t, err); code != "ServiceUnavailable" {
					t.Errorf("code %s", code)
				}
			},
			status: 503, retryable: true,
		},
		{
			fault: smtest.Fault{Kind: smtest.Unavailable, Status: 502},
			check: func(t *testing.T, err error) {
				if code := apiCode(t, err); code != "ServiceUnavailable" {
					t.Errorf("code %s", code)
				}
			},
			status: 502, retryable: true,
		},
		{
			fault: smtest.Fault{Kind: smtest.AccessDenied},
			check: func(t *testing.T, err error) {
				ae := errorAs[smithy.APIError](t, err)
				if ae.ErrorCode() != "AccessDeniedException" || ae.ErrorMessage() == "" {
					t.Errorf("error %v", err)
				}
			},
			status: 400,
		},
		{
			fault:  smtest.Fault{Kind: smtest.DecryptionFailure},
			check:  func(t *testing.T, err error) { errorAs[*types.DecryptionFailure](t, err) },
			status: 400,
		},
		{
			fault: smtest.Fault{Kind: smtest.ErrorResponse, Code: "ResourceNotFoundException", Message: "gone"},
			check: func(t *testing.T, err error) {
				if nf := errorAs[*types.ResourceNotFoundException](t, err); nf.ErrorMessage() != "gone" {
					t.Errorf("message %q", nf.ErrorMessage())
				}
			},
			status: 400,
		},
		{
			fault: smtest.Fault{Kind: smtest.DropConnection},
			check: func(t *testing.T, err error) {
				errorAs[*smithyhttp.RequestSendError](t, err)
				var ae smithy.APIError
				if errors.As(err, &ae) {
					t.Errorf("a dropped connection is an API error: %v", err)
				}
			},
			retryable: true,
		},
	} {
		t.Run(tc.fault.Kind.String(), func(t *testing.T) {
			tc.fault.Op = "GetSecretValue"
			remove := srv.AddFault(tc.fault)
			_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
			remove()
			if err == nil {
				t.Fatal("no error")
			}
			tc.check(t, err)
			if tc.status != 0 {
				if got := httpStatus(t, err); got != tc.status {
					t.Errorf("HTTP status %d, want %d", got, tc.status)
				}
			}
			if got := retryable.IsErrorRetryable(err); got != tc.retryable {
				t.Errorf("retryable = %v, want %v", got, tc.retryable)
			}
			// Removed: the next request succeeds.
			getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
		})
	}
}

func TestFaultScope(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	ctx := context.Background()
	srv.Put("a", "1")
	srv.Put("b", "2")
	get := func(id string) error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		return err
	}

	// Op: other operations pass.
	remove := srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.InternalError})
	if err := get("a"); err != nil {
		t.Errorf("GetSecretValue under a DescribeSecret fault: %v", err)
	}
	_, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
	errorAs[*types.InternalServiceError](t, err)
	remove()
	remove() // twice is fine

	// SecretID, given as a name, matches requests by name or ARN.
	remove = srv.AddFault(smtest.Fault{SecretID: "a", Kind: smtest.AccessDenied})
	if get("a") == nil || get(srv.ARN("a")) == nil {
		t.Error("fault on secret a did not fire")
	}
	if err := get("b"); err != nil {
		t.Errorf("secret b: %v", err)
	}
	remove()

	// Count: fires n times, then removes itself.
	srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Throttle, Count: 2})
	if get("a") == nil || get("a") == nil {
		t.Error("Count 2 fired less than twice")
	}
	if err := get("a"); err != nil {
		t.Errorf("third request: %v", err)
	}

	// Faults apply in order; ClearFaults removes them all.
	srv.AddFault(smtest.Fault{Kind: smtest.DecryptionFailure})
	srv.AddFault(smtest.Fault{Kind: smtest.Throttle})
	errorAs[*types.DecryptionFailure](t, get("a"))
	srv.ClearFaults()
	if err := get("a"); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}

	// A faulted request changes nothing.
	srv.AddFault(smtest.Fault{Op: "PutSecretValue", Kind: smtest.InternalError, Count: 1})
	before := srv.Stages("a")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("new")})
	errorAs[*types.InternalServiceError](t, err)
	assertStages(t, srv.Stages("a"), before)
}

func TestAddFaultPanicsOnMistakes(t *testing.T) {
	srv := smtest.NewServer(t)
	for name, f := range map[string]smtest.Fault{
		"no kind":            {},
		"unknown op":         {Op: "secretsmanager.GetSecretValue", Kind: smtest.Throttle},
		"negative count":     {Kind: smtest.Throttle, Count: -1},
		"error without code": {Kind: smtest.ErrorResponse},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			srv.AddFault(f)
		})
	}
}

// TestRetries uses the SDK's standard retryer, without backoff, against
// faults that fire twice: the third attempt succeeds.
func TestRetries(t *testing.T) {
	srv := smtest.NewServer(t)
	srv.Put("db", "v")
	cfg := srv.Config()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			o.RateLimiter = ratelimit.None
		})
	}
	c := secretsmanager.NewFromConfig(cfg)

	for _, kind := range []smtest.FaultKind{smtest.Throttle, smtest.InternalError, smtest.Unavailable, smtest.DropConnection} {
		t.Run(kind.String(), func(t *testing.T) {
			srv.ResetCalls()
			srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: kind, Count: 2})
			getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
			if n := srv.CallCount("GetSecretValue"); n != 3 {
				t.Errorf("%d calls, want 3", n)
			}
		})
	}

	// Not retryable: one call.
	srv.ResetCalls()
	srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.AccessDenied, Count: 2})
	getErr(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	if n := srv.CallCount("GetSecretValue"); n != 1 {
		t.Errorf("AccessDenied: %d calls, want 1", n)
	}
	srv.ClearFaults()
}

func TestLatency(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	srv.Put("db", "v")

	// A short delay, then the answer.
	remove := srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Latency, Delay: 30 * time.Millisecond})
	start := time.Now()
	getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("answered after %v, want at least 30ms", d)
	}
	remove()

	// A delay longer than the client waits: the client's context ends the
	// request, and the server does not hang on it (goleak checks that its
	// handler is gone at the end).
	defer srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Latency, Delay: time.Hour})()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
		done <- err
	}()
	if err := srv.WaitForCalls(context.Background(), "GetSecretValue", 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}

	// Latency then an error: both faults apply, in order.
	defer srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.Latency, Delay: time.Millisecond})()
	defer srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.Throttle})()
	_, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if code := apiCode(t, err); code != "ThrottlingException" {
		t.Errorf("code %s", code)
	}
}

// TestHold puts concurrent requests in flight deterministically, as a test of
// request collapsing would.
func TestHold(t *testing.T) {
	srv := smtest.NewServer(t)
	c := srv.Client()
	srv.Put("db", "v")
	ctx := context.Background()

	release := srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Hold})
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
			errs <- err
		})
	}
	if err := srv.WaitForCalls(ctx, "GetSecretValue", n); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("a held request returned: %v", err)
	default:
	}
	// Other operations are not held.
	if _, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")}); err != nil {
		t.Fatal(err)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// Count limits how many are held; they stay held until ClearFaults.
	srv.ResetCalls()
	srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Hold, Count: 1})
	held := make(chan error, 1)
	go func() {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
		held <- err
	}()
	if err := srv.WaitForCalls(ctx, "GetSecretValue", 1); err != nil {
		t.Fatal(err)
	}
	getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}) // the second passes
	srv.ClearFaults()
	if err := <-held; err != nil {
		t.Error(err)
	}
}

// TestCloseEndsHeldRequests: Close does not wait for a held request forever;
// the client sees a transport error, and no goroutine is left (goleak).
func TestCloseEndsHeldRequests(t *testing.T) {
	srv := smtest.New()
	c := srv.Client()
	srv.Put("db", "v")
	srv.AddFault(smtest.Fault{Kind: smtest.Hold})
	srv.AddFault(smtest.Fault{Op: "DescribeSecret", Kind: smtest.Latency, Delay: time.Hour})

	errs := make(chan error, 2)
	go func() {
		_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
		errs <- err
	}()
	go func() {
		_, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
		errs <- err
	}()
	if err := srv.WaitForCalls(context.Background(), "", 2); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close() // twice is fine
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a request held across Close succeeded")
		} else {
			errorAs[*smithyhttp.RequestSendError](t, err)
		}
	}
	if err := srv.WaitForCalls(context.Background(), "", 100); !errors.Is(err, smtest.ErrClosed) {
		t.Errorf("WaitForCalls after Close = %v", err)
	}
}

func TestWaitForCallsContext(t *testing.T) {
	srv := smtest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.WaitForCalls(ctx, "GetSecretValue", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForCalls = %v", err)
	}
	if err := srv.WaitForCalls(ctx, "GetSecretValue", 0); err != nil {
		t.Errorf("WaitForCalls(0) = %v", err)
	}
}
