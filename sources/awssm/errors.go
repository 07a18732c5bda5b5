package awssm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// Error codes, by class. The codes of the service's modeled errors are those
// of its types package; the others are the common errors of AWS APIs.
var (
	notFoundCodes = map[string]bool{
		"ResourceNotFoundException": true,
	}
	permissionCodes = map[string]bool{
		"AccessDeniedException":       true,
		"AccessDenied":                true,
		"DecryptionFailure":           true, // KMS refused to decrypt the value
		"UnrecognizedClientException": true,
		"InvalidClientTokenId":        true,
		"InvalidSignatureException":   true,
		"SignatureDoesNotMatch":       true,
		"IncompleteSignature":         true,
		"MissingAuthenticationToken":  true,
		"ExpiredTokenException":       true,
		"ExpiredToken":                true,
		"NotAuthorized":               true,
	}
	transientCodes = map[string]bool{
		"InternalServiceError":    true,
		"InternalFailure":         true,
		"ServiceUnavailable":      true,
		"RequestTimeout":          true,
		"RequestTimeoutException": true,
	}
	invalidCodes = map[string]bool{
		"InvalidParameterException":   true,
		"InvalidRequestException":     true,
		"ValidationException":         true,
		"SerializationException":      true,
		"UnknownOperationException":   true,
		"InvalidNextTokenException":   true,
		"MalformedQueryString":        true,
		"InvalidAction":               true,
		"InvalidParameterCombination": true,
		"InvalidParameterValue":       true,
		"MissingParameter":            true,
	}
)

// isThrottle reports whether err is a throttling error, by the SDK's list of
// throttling codes (ThrottlingException, TooManyRequestsException, ...).
func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
}

// isDeletion reports whether an InvalidRequestException says that the secret
// is scheduled for deletion ("... because it was marked for deletion.").
func isDeletion(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "for deletion") || strings.Contains(msg, "was deleted")
}

// isDenied reports whether err is an AccessDeniedException: IAM or a
// resource policy refused the call.
func isDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied")
}

// classOf returns the secrets sentinel that err belongs to, or nil for a
// canceled context, which is left for the caller to see as it is.
func classOf(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return secrets.ErrTransient
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case notFoundCodes[code]:
			return secrets.ErrNotFound
		case code == "InvalidRequestException" && isDeletion(ae.ErrorMessage()):
			return secrets.ErrNotFound
		case permissionCodes[code]:
			return secrets.ErrPermission
		case transientCodes[code], isThrottle(err), ae.ErrorFault() == smithy.FaultServer:
			return secrets.ErrTransient
		}
	}
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) && (st.HTTPStatusCode() >= 500 || st.HTTPStatusCode() == 429) {
		return secrets.ErrTransient
	}
	if ae != nil {
		if invalidCodes[ae.ErrorCode()] {
			return secrets.ErrInvalid
		}
		// Another error the service answered: the request was refused
		// for a reason this package does not know. Retrying may help.
		return secrets.ErrTransient
	}
	var ip *smithy.InvalidParamsError
	if errors.As(err, &ip) {
		return secrets.ErrInvalid
	}
	// Connection errors, timeouts of the transport, failures to obtain
	// credentials (an instance role's endpoint not answering): the same
	// call may succeed later.
	return secrets.ErrTransient
}

// callError wraps err, the failure of API call op for the secret of r, with
// its class. what, when set, names the version asked for. The SDK's error
// stays in the chain for errors.As, except a response that could not be
// decoded: its message may quote bytes of the response, which can be the
// secret, so it is replaced with a description.
func callError(op string, r secretRef, what string, err error) error {
	prefix := "awssm: " + op + " " + keyquote.Quote(r.id)
	if what != "" {
		prefix += " (" + what + ")"
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", prefix, context.Canceled)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w: reading the response: %w", prefix, secrets.ErrTransient, context.DeadlineExceeded)
		}
		var ne net.Error
		if errors.As(err, &ne) {
			// The connection failed while the response was read; the
			// network error quotes no part of the response.
			return fmt.Errorf("%s: %w: reading the response: %w", prefix, secrets.ErrTransient, bounded(ne))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w: the response was cut short", prefix, secrets.ErrTransient)
		}
		return fmt.Errorf("%s: %w: the response could not be decoded", prefix, secrets.ErrInvalid)
	}
	class := classOf(err)
	if class == nil {
		return fmt.Errorf("%s: %w", prefix, bounded(err))
	}
	return fmt.Errorf("%s: %w: %w", prefix, class, bounded(err))
}

// maxCause is the most bytes of an SDK error's message that an error of this
// package repeats.
const maxCause = 400

// boundedError prints the message of an error of the SDK on one line of at
// most maxCause bytes: the service may echo the request in it (a
// ValidationException quotes the SecretId it refused, whatever its length or
// content), and the URL of a failed connection is in it. The error itself
// stays in the chain, for errors.Is and errors.As.
type boundedError struct{ err error }

func (e *boundedError) Error() string { return keyquote.Line(e.err.Error(), maxCause) }
func (e *boundedError) Unwrap() error { return e.err }

// bounded wraps err in a boundedError.
func bounded(err error) error { return &boundedError{err} }

// entryError turns an entry of BatchGetSecretValue's Errors into the error
// GetSecretValue would have returned for the secret, so that errors.As finds
// the same types on both paths.
func entryError(e types.APIErrorType) error {
	code, msg := derefString(e.ErrorCode), derefString(e.Message)
	m := &msg
	switch code {
	case "ResourceNotFoundException":
		return &types.ResourceNotFoundException{Message: m}
	case "DecryptionFailure":
		return &types.DecryptionFailure{Message: m}
	case "InvalidRequestException":
		return &types.InvalidRequestException{Message: m}
	case "InvalidParameterException":
		return &types.InvalidParameterException{Message: m}
	case "InternalServiceError":
		return &types.InternalServiceError{Message: m}
	}
	if code == "" {
		code = "UnknownError"
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

// valueError reports a version that holds something this package cannot
// serve. Its message names the secret and the version, never the value.
func valueError(r secretRef, versionID, problem string) error {
	return fmt.Errorf("awssm: %s version %s: %w: %s", keyquote.Quote(r.id), keyquote.Quote(versionID), secrets.ErrInvalid, problem)
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
