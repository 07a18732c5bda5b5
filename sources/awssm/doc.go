// Package awssm is a secrets.Source for AWS Secrets Manager, on
// aws-sdk-go-v2. It serves a secret's AWSCURRENT and AWSPREVIOUS versions
// together, with AWSPENDING while a rotation is in progress, polls for
// rotations with the cheapest call that can tell, and reads many secrets in
// one BatchGetSecretValue call when a Store refreshes them together.
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
//     AWSCURRENT as the current version, AWSPREVIOUS as the previous one and
//     AWSPENDING as the pending one.
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
// Pending is the version labelled AWSPENDING when that version is not also
// AWSCURRENT: the value a rotation has staged (its createSecret step) and not
// yet made current (its finishSecret step). AWS's single-user rotation sets
// the password downstream in between (setSecret), when only the pending
// value works; the Store of package secrets tries it when the served value
// fails authentication. AWSPENDING left on the current version after a
// finished rotation, as some rotation functions leave it, is no pending
// version; AWSPENDING left on the version a rollback moved AWSCURRENT away
// from is one (it may be what the database holds). A pending version that
// is discarded (AWSPENDING removed) is gone from Pending at the next poll
// that sees it, and one without a value (a failed rotation can leave
// AWSPENDING on an empty version) is none rather than an error. A throttle
// or a refusal while reading it fails the fetch, as for AWSPREVIOUS: an
// answer without it would tell the Store that the candidate is gone.
//
// # Polling cost
//
// Every operation is counted in API calls, which is what AWS bills ($0.05 per
// 10,000) and throttles:
//
//	first load, Refresh, Fetch of one key   1 DescribeSecret + 1 GetSecretValue per version:
//	                                          2 never rotated, 3 rotated, 4 during a rotation;
//	                                          1 GetSecretValue with a query
//	background poll of one key, unchanged   1 DescribeSecret
//	  ... a pending version staged          + 1 GetSecretValue (the AWSPENDING version)
//	  ... the rotation finished             nothing more (both versions are held)
//	  ... a pending version discarded       nothing more
//	  ... a rotation never seen pending     + 1 GetSecretValue (the new AWSCURRENT)
//	refresh round of n keys, unchanged      ⌈n/20⌉ BatchGetSecretValue
//	  ... per key with a pending version    1 DescribeSecret, instead of its twentieth of a batch
//	  ... per key that rotated              + 1 DescribeSecret (+ 1 GetSecretValue for a staged version)
//	Refresh of n keys                       ⌈n/20⌉ BatchGetSecretValue + n DescribeSecret
//	                                          + 1 GetSecretValue per AWSPREVIOUS and per AWSPENDING
//	Reload of n keys, unchanged             ⌈n/20⌉ BatchGetSecretValue (current values read again)
//	  ... per key that rotated              + 1 DescribeSecret + 1 GetSecretValue per other version
//
// A poll of one key (secrets.ChangeDetector) asks DescribeSecret, whose
// VersionIdsToStages tells which versions carry AWSCURRENT, AWSPREVIOUS and
// AWSPENDING, instead of reading the values: one call instead of three, no
// value crosses the network or gets decrypted when nothing changed, and
// DescribeSecret has the highest quota of the service (40,000 calls a second
// per region, against 10,000 for GetSecretValue). Only the versions the
// Store does not hold are read: versions never change, so after a rotation
// the old AWSCURRENT, now AWSPREVIOUS, is not read again, and neither is the
// pending version that became AWSCURRENT.
//
// A full read asks DescribeSecret first too, and reads the versions it names
// by VersionId. Before AWSPENDING was served a full read cost two
// GetSecretValue calls (AWSCURRENT, AWSPREVIOUS); it now costs one more for a
// rotated secret, because no call returns more than one value and only
// DescribeSecret (or a read of the AWSPENDING label, which fails when there
// is none) tells whether a pending version exists. DescribeSecret first
// costs nothing more for a secret never rotated (two calls, as before, where
// reading the three labels would cost three, two of them failing and logged
// by CloudTrail), and the versions read are those of one instant. Only a
// full read during a rotation costs four. Reading labels is what the source
// falls back to where DescribeSecret is refused.
//
// # Batching
//
// When the Store refreshes several keys of this source in one round (keys
// loaded together fall due together; see secrets.WithJitter), it calls
// FetchMany (secrets.BatchFetcher), which reads up to 20 secrets with one
// BatchGetSecretValue call and compares each AWSCURRENT VersionId with the
// one the Store holds: a round over 100 unchanged secrets costs 5 calls,
// where per-key polling costs 100; a Reload of them costs the same 5 (see
// FetchMany). A batch sees AWSCURRENT only; a move or removal of AWSPREVIOUS
// alone (rare: rotations move both), and a pending version being staged, are
// seen by the next Refresh or single-key poll. That is when a pending
// version matters: the Store refreshes a key whose served value fails
// authentication, with a full read, which sees it. A key whose
// pending version the Store holds is left out of the batch and polled with
// DescribeSecret, so that a discarded pending version is seen in the next
// round (a batch could not tell) and the rotation's end costs no read: one
// call a round for each secret while it is in rotation. After a rotation the
// batch has read the new AWSCURRENT; one DescribeSecret tells the rest.
// ListSecrets, which lists the labels of many secrets in one call, is not
// used: AWS documents that it may lag changes by five minutes, longer than
// many rotations take. A batch also reads the values, so
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
// # Writes: taking part in a rotation
//
// The source implements secrets.Stager, secrets.PreviousRemover and
// secrets.RotationRecorder, so that the agent of package secrets/rotate, or
// a rotation function (examples/awsrotation), rotates secrets through it:
//
//	Stage           PutSecretValue with VersionStages ["AWSPENDING"]; AWSCURRENT stays put
//	Promote         UpdateSecretVersionStage AWSCURRENT from the current version to the pending
//	                one (AWS gives the old one AWSPREVIOUS), then AWSPENDING removed from it
//	Discard         UpdateSecretVersionStage removing AWSPENDING
//	RemovePrevious  UpdateSecretVersionStage removing AWSPREVIOUS
//	Load/SaveRotation  the record in a companion secret (see WithRecordName)
//
// Each checks its condition with DescribeSecret first: AWS has no
// compare-and-set on labels, except that UpdateSecretVersionStage refuses
// to remove a label from a version that does not hold it, which makes the
// move of AWSCURRENT conditional on the version the caller saw, and that a
// ClientRequestToken names one version with one value. Stage uses the
// latter: a rotation's UUID token (RotateSecret's) is the pending version's
// id; any other token gets an id derived from the current version, the
// same for every stager over it, so that of racing stagers AWS lets one
// create it. A rotation in progress, that is AWSPENDING on a version other
// than AWSCURRENT's (RotateSecret's empty version too), makes Stage fail
// with secrets.ErrConflict unless it holds the same value (a retry): the
// agent then resumes its own rotation from the record or refuses. The
// record, in a secret of its own, is written with check-and-set on its
// revisions in the same way: a tag has no condition and holds 256
// characters where a record may take 16 KiB, and versions of the secret
// itself would crowd its history and its version quota (AWS advises one
// PutSecretValue per 10 minutes per secret, and a rotation saves its record
// a few dozen times). The companion costs a secret per rotated key. Calls per
// write: Stage 2 (3 when a version is pending already), Promote 3, Discard
// 2, RemovePrevious 2, LoadRotation 1, SaveRotation 1 (and a
// DescribeSecret once per ARN key, to learn the secret's name; 4 when the
// record secret must be taken back from a deletion: CreateSecret,
// DescribeSecret, RestoreSecret, PutSecretValue).
//
// # IAM permissions
//
// A source that only reads needs the first policy below; one that also
// writes (an agent's) needs secretsmanager:PutSecretValue and
// secretsmanager:UpdateSecretVersionStage on the rotated secrets, and
// secretsmanager:CreateSecret, PutSecretValue, GetSecretValue on their
// record secrets (by default "<name>/rotor-rotation", which a resource
// "secret:mcp/prod*" covers together with "secret:mcp/prod"), and
// DescribeSecret and RestoreSecret on them too, so that deleting a record
// secret with a recovery window (DeleteSecret's default) releases a stuck
// rotation; without those, an operator deletes it with
// ForceDeleteWithoutRecovery.
//
// The read policy that makes it cheapest:
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
// polls single keys and names the versions a full read reads. BatchGetSecretValue has no resource-level permissions,
// hence "*"; AWS checks secretsmanager:GetSecretValue for each secret it
// returns, so it reaches no secret the first statement does not grant. The
// source names secrets and never uses Filters, so secretsmanager:ListSecrets
// is not needed. Secrets encrypted with a customer managed KMS key also need
// kms:Decrypt on that key.
//
// Only secretsmanager:GetSecretValue is required. Without the second
// statement (or with WithBatch(false)) refresh rounds poll each key with
// DescribeSecret; without secretsmanager:DescribeSecret as well, a key is
// read and polled by staging label, three GetSecretValue calls (AWSCURRENT,
// AWSPREVIOUS, AWSPENDING; two when one of the first two also carries
// AWSPENDING), and a move of AWSCURRENT between them fails the read with
// secrets.ErrTransient, to be tried again. The source learns
// which calls are refused from the first AccessDeniedException of each and
// does not make them again, so CloudTrail does not fill with denials.
package awssm
