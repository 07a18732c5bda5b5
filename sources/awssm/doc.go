// Package awssm is a secrets.Source for AWS Secrets Manager, on
// aws-sdk-go-v2. It serves a secret's AWSCURRENT and AWSPREVIOUS versions
// together, polls for rotations with the cheapest call that can tell, and
// reads many secrets in one BatchGetSecretValue call when a Store refreshes
// them together.
//
// # Setting up
//
// Build the client from the program's own aws.Config and register the
// source for the awssm scheme:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	src, err := awssm.New(secretsmanager.NewFromConfig(cfg))
//	...
//	store, err := secrets.New(nil, secrets.WithSource("awssm", src))
//	...
//	pw, err := store.Get(ctx, "awssm://mcp/prod#dbPassword")
//
// NewFromDefaultConfig does the first two steps. New takes any API, the
// three methods of *secretsmanager.Client the source calls, so a wrapper or
// a test double fits. The source holds no goroutine and needs no Close.
//
// # Keys and references
//
// A key is a secret's name or ARN (full, or partial: without the six random
// characters AWS appends). As a reference it reads
//
//	awssm://<name-or-ARN>[?versionStage=<label>|?versionId=<id>][#field]
//
// The Store strips the scheme and the #field selector, which picks a field
// of a JSON secret (see secrets.Secret.Field); the source receives the rest.
// Secret names cannot contain '?', so a query is unambiguous:
//
//   - no query (or versionStage=AWSCURRENT): the secret as it rotates,
//     AWSCURRENT as the current version and AWSPREVIOUS as the previous one.
//   - versionStage=<label>: the version that carries another staging label,
//     AWSPENDING during a rotation for instance, with no previous version.
//     It follows the label as it moves.
//   - versionId=<id>: one version, pinned. Versions are immutable, so it
//     never changes; it has no previous version.
//
// Query values are URL-escaped. Any other query parameter, both together, or
// an empty value fails with secrets.ErrInvalid. The client's region must be
// the secrets' region.
//
// # Versions
//
// A version's id is its AWS VersionId. Current is the version labelled
// AWSCURRENT, Previous the one labelled AWSPREVIOUS: the pair that a
// dual-key rotation and the verifier of package jwtkeys are built on. A
// secret that has never been rotated has no AWSPREVIOUS, and its Previous is
// the zero Secret, not an error. Values stored as SecretString and as
// SecretBinary both work; Secret.Bytes returns the bytes of either.
//
// # Polling cost
//
// Every operation is counted in API calls, which is what AWS bills ($0.05 per
// 10,000) and throttles:
//
//	first load, Refresh, Fetch of one key   2 GetSecretValue (AWSCURRENT, AWSPREVIOUS); 1 with a query
//	background poll of one key, unchanged   1 DescribeSecret
//	  ... after a rotation                  + 1 GetSecretValue (the new AWSCURRENT)
//	refresh round of n keys, unchanged      ⌈n/20⌉ BatchGetSecretValue
//	  ... per key that rotated              + 1 GetSecretValue (its AWSPREVIOUS)
//	Refresh or Reload of n keys             ⌈n/20⌉ BatchGetSecretValue + n GetSecretValue
//
// A poll of one key (secrets.ChangeDetector) asks DescribeSecret, whose
// VersionIdsToStages tells which versions carry AWSCURRENT and AWSPREVIOUS,
// instead of reading the values: one call instead of two, no value crosses
// the network or gets decrypted when nothing changed, and DescribeSecret has
// the highest quota of the service (40,000 calls a second per region, against
// 10,000 for GetSecretValue). After a rotation only the new AWSCURRENT is
// read: the old one, now AWSPREVIOUS, is the version the Store already holds,
// and versions never change. AWSPENDING coming and going is not a change.
//
// # Batching
//
// When the Store refreshes several keys of this source in one round (keys
// loaded together fall due together; see secrets.WithJitter), it calls
// FetchMany (secrets.BatchFetcher), which reads up to 20 secrets with one
// BatchGetSecretValue call and compares each AWSCURRENT VersionId with the
// one the Store holds: a round over 100 unchanged secrets costs 5 calls,
// where per-key polling costs 100. A batch sees AWSCURRENT only; a move of
// AWSPREVIOUS alone (rare: rotations move both) is seen by the next
// Refresh, Reload or single-key poll. A batch also reads the values, so
// each poll of a secret is decrypted and logged by CloudTrail as a
// GetSecretValue event; polling with DescribeSecret does neither, at one
// call per secret. WithBatch(false) chooses that.
//
// BatchGetSecretValue has a low quota: 100 calls a second per region, shared
// by the account. A throttled batch call is not retried; its secrets are
// polled with DescribeSecret instead, which costs one call per secret (what
// per-key polling costs, and what the Store's own per-key retries would cost
// after a failed round) but against the highest quota of the service, and
// with no failed round, no backoff and no error in the keys' Status. If
// DescribeSecret is throttled too, the rest of the round fails at once with
// secrets.ErrTransient rather than adding to the load, and the Store backs
// off. A batch call refused outright (AccessDeniedException: the policy lacks
// secretsmanager:BatchGetSecretValue) makes the source poll per key from
// then on, without further refused calls; WithBatch(false) does so from the
// start.
//
// # Errors
//
// Errors wrap the sentinels of package secrets, and the SDK's error as well,
// so errors.Is and errors.As both work:
//
//	ResourceNotFoundException, a secret scheduled for deletion    secrets.ErrNotFound
//	AccessDeniedException, DecryptionFailure, bad credentials     secrets.ErrPermission
//	ThrottlingException, InternalServiceError, 5xx, timeouts,
//	connection errors, credentials that cannot be obtained        secrets.ErrTransient
//	a value neither string nor binary, an undecodable response,
//	a malformed key, InvalidParameterException                    secrets.ErrInvalid
//
// A canceled context is not classified: errors.Is(err, context.Canceled)
// holds. The entries of BatchGetSecretValue's Errors become the same errors,
// with the same SDK types, as GetSecretValue would return. No error holds a
// value; an undecodable response's error, whose text could quote the
// response, is replaced by a description.
//
// The SDK's retries are bounded per call, whatever the client's retryer:
// two attempts at most, the second after at most 250ms (WithMaxAttempts,
// WithMaxRetryDelay). That rides over a dropped connection or a lone 500;
// beyond it the Store's backoff, with its jitter, sets the pace. Each call
// also sends a copy of its request body, which sidesteps a race in the SDK
// that could otherwise cost a connection, and a retry, under concurrent
// calls.
//
// # IAM permissions
//
// The source reads and never writes. The policy that makes it cheapest:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {
//	      "Effect": "Allow",
//	      "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
//	      "Resource": "arn:aws:secretsmanager:<region>:<account>:secret:mcp/*"
//	    },
//	    {
//	      "Effect": "Allow",
//	      "Action": "secretsmanager:BatchGetSecretValue",
//	      "Resource": "*"
//	    }
//	  ]
//	}
//
// GetSecretValue reads values (Fetch, and after a change); DescribeSecret
// polls single keys. BatchGetSecretValue has no resource-level permissions,
// hence "*"; AWS checks secretsmanager:GetSecretValue for each secret it
// returns, so it reaches no secret the first statement does not grant. The
// source names secrets and never uses Filters, so secretsmanager:ListSecrets
// is not needed. Secrets encrypted with a customer managed KMS key also need
// kms:Decrypt on that key.
//
// Only secretsmanager:GetSecretValue is required. Without the second
// statement (or with WithBatch(false)) refresh rounds poll each key with
// DescribeSecret; without secretsmanager:DescribeSecret as well, a key is
// polled by reading its values, two GetSecretValue calls. The source learns
// which calls are refused from the first AccessDeniedException of each and
// does not make them again, so CloudTrail does not fill with denials.
package awssm
