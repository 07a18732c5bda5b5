package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

func apiCode(code string) func(error) bool {
	return func(err error) bool {
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == code
	}
}

func isType[T error]() func(error) bool {
	return func(err error) bool {
		var target T
		return errors.As(err, &target)
	}
}

// TestErrorClassification fails each of the three paths (Fetch through
// GetSecretValue, FetchIfChanged through DescribeSecret, FetchMany through
// BatchGetSecretValue) in each way the fake can, and checks the class that
// errors.Is finds, the SDK error that errors.As finds, and that no message
// quotes the value.
func TestErrorClassification(t *testing.T) {
	const target = "errs/target"
	cases := []struct {
		name  string
		key   string // default target
		setup func(t *testing.T, srv *smtest.Server, c *secretsmanager.Client) func()
		ctx   func(t *testing.T) context.Context
		want  error // a sentinel, or context.Canceled
		as    func(error) bool
		// asDescribe, when set, replaces as where DescribeSecret answers.
		asDescribe func(error) bool
	}{
		{name: "ResourceNotFoundException", key: "errs/missing", want: secrets.ErrNotFound,
			as: isType[*types.ResourceNotFoundException]()},
		{name: "ScheduledForDeletion", want: secrets.ErrNotFound,
			setup: func(t *testing.T, _ *smtest.Server, c *secretsmanager.Client) func() {
				if _, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(target), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			as:         isType[*types.InvalidRequestException](),
			asDescribe: func(error) bool { return true }, // DescribeSecret succeeds; DeletedDate tells
		},
		{name: "AccessDeniedException", want: secrets.ErrPermission, as: apiCode("AccessDeniedException"),
			setup: fault(smtest.Fault{Kind: smtest.AccessDenied, SecretID: target})},
		{name: "DecryptionFailure", want: secrets.ErrPermission, as: isType[*types.DecryptionFailure](),
			setup: fault(smtest.Fault{Kind: smtest.DecryptionFailure, SecretID: target})},
		{name: "ExpiredTokenException", want: secrets.ErrPermission, as: apiCode("ExpiredTokenException"),
			setup: fault(smtest.Fault{Kind: smtest.ErrorResponse, Code: "ExpiredTokenException", SecretID: target})},
		{name: "ThrottlingException", want: secrets.ErrTransient, as: apiCode("ThrottlingException"),
			setup: fault(smtest.Fault{Kind: smtest.Throttle, SecretID: target})},
		{name: "InternalServiceError", want: secrets.ErrTransient, as: isType[*types.InternalServiceError](),
			setup: fault(smtest.Fault{Kind: smtest.InternalError, SecretID: target})},
		{name: "ServiceUnavailable503", want: secrets.ErrTransient, as: apiCode("ServiceUnavailable"),
			setup: fault(smtest.Fault{Kind: smtest.Unavailable, SecretID: target})},
		{name: "BadGateway502", want: secrets.ErrTransient, as: apiCode("BadGateway"),
			setup: fault(smtest.Fault{Kind: smtest.ErrorResponse, Code: "BadGateway", Status: http.StatusBadGateway, SecretID: target})},
		{name: "DroppedConnection", want: secrets.ErrTransient, as: func(error) bool { return true },
			setup: fault(smtest.Fault{Kind: smtest.DropConnection, SecretID: target})},
		{name: "Timeout", want: secrets.ErrTransient,
			as:    func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			setup: fault(smtest.Fault{Kind: smtest.Hold, SecretID: target}),
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			}},
		{name: "ValidationException", want: secrets.ErrInvalid, as: apiCode("ValidationException"),
			setup: fault(smtest.Fault{Kind: smtest.ErrorResponse, Code: "ValidationException", SecretID: target})},
		{name: "UnknownClientError", want: secrets.ErrTransient, as: apiCode("SomethingNewException"),
			setup: fault(smtest.Fault{Kind: smtest.ErrorResponse, Code: "SomethingNewException", SecretID: target})},
		{name: "Canceled", want: context.Canceled, as: func(error) bool { return true },
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			}},
		{name: "MalformedKey", key: target + "?versionLabel=AWSCURRENT", want: secrets.ErrInvalid, as: func(error) bool { return true }},
	}
	sentinels := []error{secrets.ErrNotFound, secrets.ErrPermission, secrets.ErrTransient, secrets.ErrInvalid}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, src := newSource(t, awssm.WithMaxAttempts(1))
			client := srv.Client()
			srv.Put(target, canary)
			srv.Put(target, canary+"-2")
			srv.Put("errs/other", "fine")
			key := tc.key
			if key == "" {
				key = target
			}
			known, err := src.Fetch(ctxT(t), target)
			if err != nil {
				t.Fatal(err)
			}
			otherKnown, err := src.Fetch(ctxT(t), "errs/other")
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				if remove := tc.setup(t, srv, client); remove != nil {
					defer remove()
				}
			}
			ctxFor := func() context.Context {
				if tc.ctx != nil {
					return tc.ctx(t)
				}
				return ctxT(t)
			}
			check := func(path string, err error, as func(error) bool) {
				t.Helper()
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: err = %v, want %v", path, err, tc.want)
				}
				for _, s := range sentinels {
					if s != tc.want && errors.Is(err, s) {
						t.Fatalf("%s: err = %v is also %v", path, err, s)
					}
				}
				if !as(err) {
					t.Fatalf("%s: err = %v (%T) does not carry the SDK's error", path, err, errors.Unwrap(err))
				}
				noLeak(t, err)
			}

			asDescribe := tc.as
			if tc.asDescribe != nil {
				asDescribe = tc.asDescribe
			}
			// Fetch asks DescribeSecret first.
			_, err = src.Fetch(ctxFor(), key)
			check("Fetch", err, asDescribe)

			r := src.FetchIfChanged(ctxFor(), secrets.Request{Key: key, Known: known})
			check("FetchIfChanged", r.Err, asDescribe)

			res := src.FetchMany(ctxFor(), []secrets.Request{{Key: key, Known: known}, {Key: "errs/other", Known: otherKnown}})
			if len(res) != 2 {
				t.Fatalf("FetchMany: %d results", len(res))
			}
			check("FetchMany", res[0].Err, asDescribe)
			forced := src.FetchMany(ctxFor(), []secrets.Request{{Key: key}, {Key: "errs/other"}})
			check("FetchMany forced", forced[0].Err, tc.as)
		})
	}
}

func fault(f smtest.Fault) func(*testing.T, *smtest.Server, *secretsmanager.Client) func() {
	return func(_ *testing.T, srv *smtest.Server, _ *secretsmanager.Client) func() { return srv.AddFault(f) }
}

// TestPerSecretBatchErrors: errors that BatchGetSecretValue reports for one
// secret fail that key alone, with the type GetSecretValue would return.
func TestPerSecretBatchErrors(t *testing.T) {
	srv, src := newSource(t)
	for _, n := range []string{"b/ok", "b/denied", "b/undecryptable", "b/doomed"} {
		srv.Put(n, canary)
	}
	if _, err := srv.Client().DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("b/doomed")}); err != nil {
		t.Fatal(err)
	}
	defer srv.AddFault(smtest.Fault{Kind: smtest.AccessDenied, SecretID: "b/denied"})()
	defer srv.AddFault(smtest.Fault{Kind: smtest.DecryptionFailure, SecretID: "b/undecryptable"})()
	srv.ResetCalls()
	res := src.FetchMany(ctxT(t), []secrets.Request{
		{Key: "b/ok"}, {Key: "b/denied"}, {Key: "b/undecryptable"}, {Key: "b/doomed"}, {Key: "b/missing"},
	})
	wants := []struct {
		class error
		as    func(error) bool
	}{
		{nil, nil},
		{secrets.ErrPermission, apiCode("AccessDeniedException")},
		{secrets.ErrPermission, isType[*types.DecryptionFailure]()},
		{secrets.ErrNotFound, isType[*types.InvalidRequestException]()},
		{secrets.ErrNotFound, isType[*types.ResourceNotFoundException]()},
	}
	for i, w := range wants {
		noLeak(t, res[i].Err)
		if w.class == nil {
			if res[i].Err != nil || res[i].Versions.Current.Reveal() != canary {
				t.Fatalf("result %d: %v", i, res[i].Err)
			}
			continue
		}
		if !errors.Is(res[i].Err, w.class) || !w.as(res[i].Err) {
			t.Fatalf("result %d: err = %v, want %v", i, res[i].Err, w.class)
		}
	}
	// One batch call, and one DescribeSecret for b/ok's AWSPREVIOUS and
	// AWSPENDING (it has neither).
	if c := srv.Calls(); c["BatchGetSecretValue"] != 1 || c["DescribeSecret"] != 1 || srv.TotalCalls() != 2 {
		t.Fatalf("calls = %v", c)
	}
}

// stubAPI answers every call from functions, for what the fake cannot
// produce: a malformed answer.
type stubAPI struct {
	get func() (*secretsmanager.GetSecretValueOutput, error)
}

func (s stubAPI) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return s.get()
}

func (s stubAPI) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{VersionIdsToStages: map[string][]string{"v1": {"AWSCURRENT"}}}, nil
}

func (s stubAPI) BatchGetSecretValue(context.Context, *secretsmanager.BatchGetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	return nil, errors.New("not used")
}

func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  *secretsmanager.GetSecretValueOutput
		err  error
	}{
		{name: "NoValue", out: &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v1")}},
		{name: "NoVersionId", out: &secretsmanager.GetSecretValueOutput{SecretString: aws.String(canary)}},
		{name: "UndecodableResponse", err: &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue",
			Err: &smithy.DeserializationError{Err: fmt.Errorf("invalid character in %q", canary), Snapshot: []byte(canary)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := awssm.New(stubAPI{get: func() (*secretsmanager.GetSecretValueOutput, error) { return tc.out, tc.err }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Fetch(ctxT(t), "stub/secret")
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			noLeak(t, err)
			var de *smithy.DeserializationError
			if errors.As(err, &de) {
				t.Fatal("the decoding error, which may hold the response, is still in the chain")
			}
		})
	}
}

// TestCancelInFlight: a call canceled while the server holds it returns an
// error wrapping context.Canceled, on every path.
func TestCancelInFlight(t *testing.T) {
	srv, src := newSource(t)
	srv.Put("c/one", "v")
	srv.Put("c/two", "v")
	known, err := src.Fetch(ctxT(t), "c/one")
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]func(context.Context) error{
		"Fetch": func(ctx context.Context) error { _, err := src.Fetch(ctx, "c/one"); return err },
		"FetchIfChanged": func(ctx context.Context) error {
			return src.FetchIfChanged(ctx, secrets.Request{Key: "c/one", Known: known}).Err
		},
		"FetchMany": func(ctx context.Context) error {
			return src.FetchMany(ctx, []secrets.Request{{Key: "c/one"}, {Key: "c/two"}})[0].Err
		},
	}
	for name, call := range paths {
		t.Run(name, func(t *testing.T) {
			defer srv.AddFault(smtest.Fault{Kind: smtest.Hold})()
			srv.ResetCalls()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- call(ctx) }()
			if err := srv.WaitForCalls(ctxT(t), "", 1); err != nil {
				t.Fatal(err)
			}
			cancel()
			err := <-done
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			for _, s := range []error{secrets.ErrNotFound, secrets.ErrPermission, secrets.ErrTransient, secrets.ErrInvalid} {
				if errors.Is(err, s) {
					t.Fatalf("a cancellation is classified as %v: %v", s, err)
				}
			}
		})
	}
}

// TestResponseCutShortIsTransient: a response whose connection failed
// while it was read is a transient failure, not an invalid value.
func TestResponseCutShortIsTransient(t *testing.T) {
	for _, cause := range []error{
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("use of closed network connection")},
		io.ErrUnexpectedEOF,
	} {
		src, err := awssm.New(stubAPI{get: func() (*secretsmanager.GetSecretValueOutput, error) {
			return nil, &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue",
				Err: &smithy.DeserializationError{Err: cause, Snapshot: []byte(canary)}}
		}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Fetch(ctxT(t), "stub/secret")
		if !errors.Is(err, secrets.ErrTransient) || errors.Is(err, secrets.ErrInvalid) {
			t.Fatalf("%v: err = %v, want ErrTransient", cause, err)
		}
		noLeak(t, err)
	}
}

// TestKeysInErrorsAreBounded asks, through each path (GetSecretValue,
// DescribeSecret, BatchGetSecretValue), for 1 MiB keys and keys holding a
// newline: every error is short and on one line, the service's echo of the
// SecretId in a ValidationException included.
func TestKeysInErrorsAreBounded(t *testing.T) {
	srv, src := newSource(t)
	srv.Put("there", canary)
	long := strings.Repeat("k", 1<<20)
	// Past AWS's limit of 2048 for a SecretId but within the limit of a
	// request body: the ValidationException quotes the whole SecretId.
	echoed := strings.Repeat("e", 64<<10)
	known := secrets.Versions{Current: secrets.NewSecretString("k", "v0", "x")}
	for name, key := range map[string]string{
		"1 MiB name":               long,
		"64 KiB name":              echoed,
		"64 KiB name, newlines":    strings.Repeat("e\n", 32<<10),
		"1 MiB stage":              "there?versionStage=" + long,
		"1 MiB name and stage":     long + "?versionStage=" + long,
		"1 MiB version id":         "there?versionId=" + long,
		"1 MiB query name":         "there?" + long + "=1",
		"1 MiB malformed query":    "there?" + strings.Repeat("%", 1<<20),
		"1 MiB without name":       "?" + long,
		"newline in name":          "A\nB",
		"newline in stage":         "there?versionStage=A%0AB",
		"newline in version id":    "there?versionId=A%0AB",
		"newline in query name":    "there?a%0Ab=1",
		"newline in missing value": "A\nB?versionStage=",
	} {
		errs := []error{}
		_, err := src.Fetch(ctxT(t), key)
		errs = append(errs, err)
		errs = append(errs, src.FetchIfChanged(ctxT(t), secrets.Request{Key: key, Known: known}).Err)
		for _, r := range src.FetchMany(ctxT(t), []secrets.Request{{Key: key}, {Key: key, Known: known}}) {
			errs = append(errs, r.Err)
		}
		for i, err := range errs {
			if err == nil {
				t.Errorf("%s, path %d: no error", name, i)
				continue
			}
			noLeak(t, err)
			if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("%s, path %d: message of %d bytes, or not on one line: %.300q", name, i, len(msg), msg)
			}
		}
	}
	// The SDK's error is still in the chain.
	_, err := src.Fetch(ctxT(t), echoed)
	if !errors.Is(err, secrets.ErrInvalid) || !apiCode("ValidationException")(err) {
		t.Errorf("64 KiB name: err = %.300v, want ErrInvalid holding a ValidationException", err)
	}
}
