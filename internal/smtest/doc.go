// Package smtest is a fake AWS Secrets Manager for tests: an in-process
// server on a loopback address that the real aws-sdk-go-v2 client talks to
// over HTTP, with the real wire protocol (AWS JSON 1.1).
//
// # Use
//
//	srv := smtest.NewServer(t)           // closed when the test ends
//	srv.Put("mcp/prod", `{"dbPassword":"hunter2"}`)
//	client := srv.Client()               // or secretsmanager.NewFromConfig(srv.Config())
//	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
//		SecretId: aws.String("mcp/prod"),
//	})
//
// Config returns an aws.Config with static credentials, the server's region
// (us-east-1 by default), BaseEndpoint set to the server, an HTTP client whose
// connections Close closes (so goleak sees no leftover keep-alive goroutine),
// and a retryer that makes one attempt (so a test sees a fault at once and
// never waits for a backoff). Tests of the SDK's retries set their own
// Retryer on the returned Config.
//
// Put, PutBinary, Remove, ARN, Stages and Versions seed and inspect the state
// directly: they are not requests, so they are not counted and no fault
// applies to them. Calls, CallCount, TotalCalls and WaitForCalls count the
// HTTP requests by operation.
//
// # Faults
//
// AddFault breaks requests until the fault is removed or has fired Count
// times: Throttle, InternalError, Unavailable (503), AccessDenied,
// DecryptionFailure and ErrorResponse answer an error; Latency delays;
// DropConnection closes the connection without an answer; Hold keeps requests
// waiting until the fault is removed. A fault may be limited to one operation
// and to one secret. Waiting faults honour the request's context and the
// server's Close. See Fault.
//
// # Operations
//
// CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret,
// UpdateSecretVersionStage, DescribeSecret, BatchGetSecretValue,
// DeleteSecret, RestoreSecret, ListSecrets, ListSecretVersionIds,
// RotateSecret, CancelRotateSecret and GetRandomPassword are
// implemented. Any other operation of the service answers
// UnknownOperationException with a message that says the fake lacks it, and
// a target outside the service answers UnknownOperationException.
//
// # Fidelity
//
// Verified against the SDK (service/secretsmanager v1.50.10 and smithy-go
// v1.28.8: the schemas of the operations, the awsjson protocol, the error
// deserializer, the retryer) and the Secrets Manager Smithy model and API
// reference:
//
//   - Framing: POST with X-Amz-Target "secretsmanager.<Operation>",
//     Content-Type application/x-amz-json-1.1; member names exactly as in the
//     model (the SDK matches them case-sensitively); timestamps as epoch
//     seconds in a JSON number; SecretBinary as standard base64. Errors are
//     {"__type": name, "Message": text}; the modeled ones (e.g.
//     ResourceNotFoundException) reach the caller as their types.* value,
//     others (ThrottlingException, AccessDeniedException, ValidationException)
//     as a generic smithy.APIError with that code. Every answer carries an
//     X-Amzn-Requestid header.
//   - Staging labels: a label is on at most one version; moving AWSCURRENT
//     (by PutSecretValue, UpdateSecret or UpdateSecretVersionStage) gives
//     AWSPREVIOUS to the version it left, and the version that had AWSPREVIOUS
//     loses it; PutSecretValue without VersionStages moves AWSCURRENT; the
//     first version of a secret gets AWSCURRENT whatever its VersionStages.
//     UpdateSecretVersionStage adds the label to the target's labels: in a
//     rotation, AWSPENDING stays on the new version until it is removed.
//     Versions left without a label are deprecated: out of
//     VersionIdsToStages and ListSecretVersionIds (unless IncludeDeprecated),
//     still readable by VersionId.
//   - Idempotency: a ClientRequestToken that names a version with the same
//     value succeeds and changes nothing; with another value it fails with
//     ResourceExistsException. The SDK fills the token with a UUID.
//   - GetSecretValue: AWSCURRENT by default; VersionId and VersionStage must
//     name the same version; an unknown secret, version or label is
//     ResourceNotFoundException; a secret scheduled for deletion is
//     InvalidRequestException. LastAccessedDate has the resolution of a day.
//   - BatchGetSecretValue: SecretIdList (1 to 20) or Filters, not both;
//     MaxResults (1 to 20) with Filters; per-secret failures in Errors
//     (ErrorCode, Message, SecretId), which is present even when empty.
//   - DeleteSecret: recovery window 7 to 30 days, 30 by default, not
//     together with ForceDeleteWithoutRecovery; a forced delete of a missing
//     secret succeeds; RestoreSecret cancels; when the window has passed on
//     the server's clock (see WithClock) the deletion becomes permanent.
//   - CreateSecret: names of ASCII letters, digits and /_+=.@-; ARNs end in
//     the name, a hyphen and six random characters; secrets are found by
//     name, full ARN, or ARN without the suffix.
//   - Constraints of the model (lengths of ids, tokens, values, lists;
//     ranges of MaxResults) answer ValidationException, which AWS checks on
//     the server; the Go SDK checks only required members.
//   - Rotation: RotateSecret records the configuration (RotationEnabled,
//     RotationLambdaARN, RotationRules, shown by DescribeSecret with
//     LastRotatedDate and, for AutomaticallyAfterDays, NextRotationDate) and,
//     unless RotateImmediately is false, creates the version named by its
//     ClientRequestToken with AWSPENDING and no value: GetSecretValue of it
//     answers ResourceNotFoundException until PutSecretValue with the same
//     token stores the value, as AWS's rotation functions do in createSecret.
//     RotateSecret while AWSPENDING is on a version other than AWSCURRENT's
//     answers InvalidRequestException (a previous rotation isn't complete);
//     the same token again answers the same version. Moving AWSCURRENT to
//     that version sets LastRotatedDate. CancelRotateSecret turns rotation
//     off and leaves the labels as they are. No function is invoked: a test
//     sends the four steps to its rotation handler itself.
//   - GetRandomPassword: PasswordLength 1 to 4096 (32 by default), the four
//     character types less those excluded, the space with IncludeSpace, and
//     one character of each included type unless RequireEachIncludedType is
//     false; a request that excludes every type, or asks for more types than
//     characters, answers InvalidParameterException.
//   - ThrottlingException and AccessDeniedException are HTTP 400 (the AWS
//     common errors), InternalServiceError 500, ServiceUnavailable 503.
//
// Not faithful, or not verified:
//
//   - The exact wording of error messages follows messages AWS is known to
//     send where they are known; the others, and the exception chosen for
//     some rare misuses (UpdateSecretVersionStage with a version that does
//     not exist, BatchGetSecretValue with neither or both of SecretIdList and
//     Filters), are the fake's best guess. Clients should branch on the
//     error type, not on the text.
//   - No authentication: the signature is not checked, any credentials work.
//   - No KMS, replication, resource policies or tags operations; rotation
//     invokes no function, evaluates no ScheduleExpression and never starts
//     by itself on schedule. The messages of RotateSecret's and
//     GetRandomPassword's errors are the fake's best guess. Tags given to CreateSecret are kept
//     and shown by DescribeSecret and ListSecrets.
//   - Versions are never purged: AWS deletes deprecated versions beyond about
//     100; the fake keeps them all.
//   - Filters match by prefix as documented; "all" approximates AWS's word
//     search over name, description and tags.
//   - Timestamps have millisecond precision.
package smtest
