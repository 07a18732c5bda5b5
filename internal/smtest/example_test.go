package smtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
)

// Start a server, seed a secret, and read it with the real SDK client. In a
// test, smtest.NewServer(t) closes the server when the test ends.
func Example() {
	srv := smtest.New()
	defer srv.Close()

	srv.Put("mcp/prod", `{"dbPassword":"old"}`)
	srv.Put("mcp/prod", `{"dbPassword":"new"}`) // AWSCURRENT moves, the old version becomes AWSPREVIOUS

	ctx := context.Background()
	client := secretsmanager.NewFromConfig(srv.Config())

	for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId:     aws.String("mcp/prod"),
			VersionStage: aws.String(stage),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(stage, aws.ToString(out.SecretString))
	}

	// Make the next read fail as if AWS throttled it.
	remove := srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.Throttle, Count: 1})
	defer remove()
	_, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mcp/prod")})
	var ae smithy.APIError
	if errors.As(err, &ae) {
		fmt.Println("error:", ae.ErrorCode())
	}

	_, err = client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mcp/missing")})
	var nf *types.ResourceNotFoundException
	fmt.Println("not found:", errors.As(err, &nf))

	fmt.Println("GetSecretValue calls:", srv.CallCount("GetSecretValue"))
	// Output:
	// AWSCURRENT {"dbPassword":"new"}
	// AWSPREVIOUS {"dbPassword":"old"}
	// error: ThrottlingException
	// not found: true
	// GetSecretValue calls: 4
}
