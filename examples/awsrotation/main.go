// Command awsrotation is an AWS Secrets Manager rotation function for
// RDS-style PostgreSQL secrets, on rotor's PostgreSQL target: the four steps
// createSecret, setSecret, testSecret and finishSecret, single-user or
// alternating-users, as AWS's templates SecretsManagerRDSPostgreSQLRotation
// SingleUser and MultiUser do them, in Go. Passwords reach the database as
// SCRAM verifiers computed in the function, never in a statement.
//
// Build it for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./examples/awsrotation
//
// Configuration, by environment variable:
//
//	ROTATION_SCHEME      single (default) or alternating
//	SSL_MODE             sslmode when the secret has no "ssl" member (default prefer)
//	PASSWORD_LENGTH      GetRandomPassword's length (default 32)
//	EXCLUDE_CHARACTERS   characters left out (default :/@"'\ as AWS's templates; empty keeps it)
//	EXCLUDE_NUMBERS, EXCLUDE_PUNCTUATION, EXCLUDE_UPPERCASE, EXCLUDE_LOWERCASE,
//	REQUIRE_EACH_INCLUDED_TYPE (default true)   true/false
//	SECRETS_MANAGER_ENDPOINT  an endpoint URL (a VPC endpoint), optional
//
// See README.md for the IAM policy, the function's configuration and the
// secret's rotation rules.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/sources/awssm"
)

func main() {
	r, err := fromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsrotation:", err)
		os.Exit(1)
	}
	lambda.Start(r.Handle)
}

// fromEnv builds the Rotator from the environment.
func fromEnv(ctx context.Context, getenv func(string) string) (*Rotator, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	var opts []func(*secretsmanager.Options)
	if ep := getenv("SECRETS_MANAGER_ENDPOINT"); ep != "" {
		opts = append(opts, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(ep) })
	}
	client := secretsmanager.NewFromConfig(cfg, opts...)
	return newRotator(client, getenv)
}

// newRotator builds the Rotator over client from the variables of getenv.
func newRotator(client Client, getenv func(string) string) (*Rotator, error) {
	src, err := awssm.New(client)
	if err != nil {
		return nil, err
	}
	r := &Rotator{Client: client, Source: src, SSLMode: getenv("SSL_MODE"),
		Log: slog.New(slog.NewJSONHandler(os.Stderr, nil))}
	switch s := getenv("ROTATION_SCHEME"); s {
	case "", "single":
	case "alternating":
		r.Alternating = true
	default:
		return nil, fmt.Errorf("ROTATION_SCHEME %q: want single or alternating", s)
	}
	length := int64(32)
	if v := getenv("PASSWORD_LENGTH"); v != "" {
		if length, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("PASSWORD_LENGTH %q: %w", v, err)
		}
	}
	exclude := ":/@\"'\\"
	if v := getenv("EXCLUDE_CHARACTERS"); v != "" {
		exclude = v
	}
	flag := func(name string, def bool) *bool {
		v := strings.ToLower(getenv(name))
		if v == "" {
			return aws.Bool(def)
		}
		return aws.Bool(v == "true" || v == "1" || v == "y" || v == "yes")
	}
	r.Password = secretsmanager.GetRandomPasswordInput{
		PasswordLength: aws.Int64(length), ExcludeCharacters: aws.String(exclude),
		ExcludeNumbers: flag("EXCLUDE_NUMBERS", false), ExcludePunctuation: flag("EXCLUDE_PUNCTUATION", false),
		ExcludeUppercase: flag("EXCLUDE_UPPERCASE", false), ExcludeLowercase: flag("EXCLUDE_LOWERCASE", false),
		RequireEachIncludedType: flag("REQUIRE_EACH_INCLUDED_TYPE", true),
	}
	return r, nil
}
