package awssm

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// callOptions returns the per-call options: the HTTP client wrapped by
// ownBody, and bounds on the SDK's retries. With noThrottleRetry set, a
// throttled attempt is not retried: the caller has a better answer to
// throttling than trying the same call again.
func (s *Source) callOptions(noThrottleRetry bool) []func(*secretsmanager.Options) {
	return []func(*secretsmanager.Options){func(o *secretsmanager.Options) {
		if o.HTTPClient != nil {
			o.HTTPClient = ownBody{o.HTTPClient}
		}
		if s.maxAttempts == 0 && !noThrottleRetry {
			return
		}
		inner := o.Retryer
		if inner == nil {
			inner = retry.NewStandard()
		}
		b := &boundedRetryer{RetryerV2: asRetryerV2(inner), noThrottle: noThrottleRetry}
		if s.maxAttempts > 0 {
			b.maxAttempts = s.maxAttempts
			b.maxDelay = s.maxRetryDelay
			// The client wraps the retryer again only when this differs
			// from its own setting; either way MaxAttempts is ours.
			o.RetryMaxAttempts = s.maxAttempts
		}
		o.Retryer = b
	}}
}

// boundedRetryer is the client's retryer with a cap on attempts and on the
// wait between them, and optionally without retries of throttling.
type boundedRetryer struct {
	aws.RetryerV2
	maxAttempts int           // 0: the inner retryer's
	maxDelay    time.Duration // 0: the inner retryer's
	noThrottle  bool
}

func (r *boundedRetryer) MaxAttempts() int {
	if r.maxAttempts > 0 {
		return r.maxAttempts
	}
	return r.RetryerV2.MaxAttempts()
}

func (r *boundedRetryer) IsErrorRetryable(err error) bool {
	if r.noThrottle && isThrottle(err) {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

func (r *boundedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if r.maxDelay > 0 && d > r.maxDelay {
		d = r.maxDelay
	}
	return d, derr
}

// asRetryerV2 adapts a Retryer that lacks GetAttemptToken, as the SDK's
// retry middleware does.
func asRetryerV2(r aws.Retryer) aws.RetryerV2 {
	if v2, ok := r.(aws.RetryerV2); ok {
		return v2
	}
	return retryerV1{r}
}

type retryerV1 struct{ aws.Retryer }

func (r retryerV1) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.Retryer.GetInitialToken(), nil
}
