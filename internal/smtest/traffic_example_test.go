package smtest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
)

// Throttle as AWS does beyond its documented quotas, and keep a log of the
// requests to count them by client and by second.
func ExampleWithQuota() {
	// A clock that stands still: the quota's bucket never refills, however
	// slow the machine.
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	srv := smtest.New(smtest.WithClock(func() time.Time { return now }), smtest.WithRequestLog(),
		smtest.WithQuota(smtest.Quota{Ops: []string{"GetSecretValue"}, PerSecond: 2}))
	defer srv.Close()
	srv.Put("mcp/prod", "v1")

	cfg := srv.Config()
	cfg.AppID = "replica-1" // the SDK sends it in the User-Agent
	client := secretsmanager.NewFromConfig(cfg)
	for range 3 {
		_, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
			SecretId: aws.String("mcp/prod"),
		})
		var ae smithy.APIError
		if errors.As(err, &ae) {
			fmt.Println("error:", ae.ErrorCode())
		} else {
			fmt.Println("ok")
		}
	}
	for _, r := range srv.Requests() {
		fmt.Println(r.Op, r.SecretIDs, r.Throttled)
	}
	// Output:
	// ok
	// ok
	// error: ThrottlingException
	// GetSecretValue [mcp/prod] false
	// GetSecretValue [mcp/prod] false
	// GetSecretValue [mcp/prod] true
}
