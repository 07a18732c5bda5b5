// Package vault is a secrets.Source for the KV secrets engines (versions 2
// and 1) and the database secrets engine of HashiCorp Vault, on
// github.com/hashicorp/vault/api. It serves a KV v2 secret's latest version
// with the one before it, polls with one metadata read, and keeps its Vault
// token alive: it renews the token in the background and logs in again when
// the token can no longer be renewed or Vault rejects it. It serves the
// database engine's static roles and dynamic credentials, renewing the
// leases of the latter and telling the Store when to read them again (see
// Database secrets engine). It is also a store the rotation agent (package
// secrets/rotate) rotates KV v2 secrets in: it stages, promotes and discards
// versions and keeps rotation records (see Rotation).
//
// # Setting up
//
// Build a client the usual way (api.DefaultConfig reads VAULT_ADDR,
// VAULT_NAMESPACE and the TLS variables; api.NewClient reads VAULT_TOKEN),
// or let NewFromEnv do it, and register the source for the vault scheme:
//
//	src, err := vault.NewFromEnv()
//	...
//	defer src.Close()
//	store, err := secrets.New(nil, secrets.WithSource("vault", src))
//	...
//	pw, err := store.Get(ctx, "vault://secret/mcp/db#password")
//
// To log in rather than start from a token (and to log in again when the
// token expires), give an auth method, AppRole here:
//
//	method, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromEnv: "APPROLE_SECRET_ID"})
//	...
//	src, err := vault.New(client, vault.WithAuth(method))
//
// New works on a copy of the client (see New): the source never changes the
// caller's client, and the caller's later changes do not reach the source.
//
// # Keys and references
//
// A key is "<mount>/<path>": the mount of a KV engine followed by the
// secret's path in it, as the vault command writes them ("vault kv get
// secret/mcp/db" reads the key "secret/mcp/db"). As a reference:
//
//	vault://<mount>/<path>[?field=<name>][#<field>]
//
// Do not write the "data/" or "metadata/" segment of the KV v2 HTTP API: the
// source adds it. The Store strips the scheme and the #field selector and
// passes the rest to the source.
//
// A KV secret is a map of fields, and the value the source serves is that
// map as compact JSON, members sorted by name, nothing HTML-escaped:
//
//	{"password":"s3cr3t","port":5432,"user":"app"}
//
// so the Store's #field selector (see secrets.Secret.Field) picks a field:
// "vault://secret/mcp/db#password" yields s3cr3t. A string field yields its
// text; any other JSON value (a number, a boolean, null, a nested object)
// yields its compact JSON, numbers digit for digit as they were written
// ("5432"). A JSON pointer reaches into nested objects: "#/tls/key".
//
// The query ?field=<name> makes the source itself serve one top-level field
// (same rendering), for a Source used without a Store's selector, or where
// the other fields of the secret should not be held in memory. A previous
// version that lacks the field has no previous version of that field. Any
// other query parameter fails with secrets.ErrInvalid.
//
// A key under a mount of the database secrets engine names a role, static
// or dynamic, as the vault command reads it:
//
//	vault://database/static-creds/<role>   vault read database/static-creds/<role>
//	vault://database/creds/<role>          vault read database/creds/<role>
//
// and its value is the credential as compact JSON,
// {"password":"…","username":"…"}, so that #username and #password select
// the two halves and a validator sees the pair. See Database secrets
// engine.
//
// # Mounts
//
// The source finds a key's mount, and whether it runs KV version 1 or 2 or
// the database engine, the way the vault command does: it asks Vault (GET
// sys/internal/ui/mounts/<key>), once per mount for the life of the Source.
// WithMount("secret", 2) and WithDatabaseMount("database") declare a mount
// instead, which saves that call and the token's need for it. A mount
// upgraded from version 1 to 2 while the source runs is seen by a new
// Source. A key under a mount of any other engine fails with
// secrets.ErrInvalid.
//
// # Versions
//
// KV v2: the version id is the KV version number ("3"). Current is the latest
// version (the metadata's current_version) and Previous the newest earlier
// version that is neither deleted nor destroyed: after writes 1, 2, 3 and a
// soft delete of 2, Previous is 1, and after an undelete of 2 it is 2 again.
// A latest version that is deleted or destroyed makes the secret not found
// (secrets.ErrNotFound): the Store keeps serving the value it has until a
// new version is written or the deleted one undeleted. A version whose
// deletion is only scheduled (delete_version_after) counts as live until
// its deletion time.
//
// While a rotation is in progress the latest version may be a pending one,
// not the current one: see Rotation for what the source serves then. A key
// never rotated reads exactly as above.
//
// KV v1 keeps no versions: Current is the value, with secrets.ContentVersion
// of it as its id (equal values, equal ids, in every process), and Previous
// is always zero.
//
// # Rotation
//
// The Source implements secrets.Stager, secrets.PreviousRemover and
// secrets.RotationRecorder (secrets.Rotatable) for keys under KV v2 mounts.
// One Source type serves both KV versions, so the type assertion by which
// the agent discovers the capability always succeeds; the mount decides. A
// key under a KV v1 mount, which keeps no versions, fails every write with
// an error wrapping secrets.ErrInvalid and errors.ErrUnsupported, changing
// nothing, and has no rotation record (LoadRotation returns the zero one).
//
// A pending version is a KV version like any other, and the key's custom
// metadata says which version is which, with three marks whose values are
// version numbers:
//
//	rotor-current   the version served as current while newer ones exist
//	rotor-pending   the version staged, until promoted or discarded
//	rotor-retired   the newest version RemovePrevious retired
//
// The steps, for a key whose version 4 is current:
//
//	Stage     marks rotor-current=4, rotor-pending=5 (one metadata PATCH),
//	          then writes version 5 with cas=4: of stagers racing, one wins
//	Promote   marks rotor-current=5 and removes rotor-pending (one PATCH):
//	          5 is current, 4 previous, in that one write
//	Discard   soft-deletes version 5, then removes rotor-pending: 4 stays
//	          current, and the next Stage writes version 6
//	RemovePrevious  marks rotor-retired=4: no version up to 4 is previous
//
// Fetch applies one rule: with rotor-current naming version c, c is current
// as long as every live version above it is the one rotor-pending names
// (which is then Pending); any other live version above c, that is a
// write that is not the rotation's ("vault kv put", another program), voids
// the marks, and the latest version is current as without them. So a key
// never rotated reads as it always did, and a plain write after (or during)
// a rotation is current, as in plain KV v2. A pending version is never
// current without Promote: if version c is deleted by hand, the key reads
// as not found until it is undeleted or a new version is written.
//
// What other tools see. "vault kv get" reads the latest version, so during
// a rotation it shows the pending value, with the marks in its
// custom_metadata; "vault kv get -version=<rotor-current>" shows the
// current one. After a Discard "vault kv get" reports the latest version
// deleted; after a Promote it shows the current value as usual. Other
// readers of the latest version (Vault Agent templates, External Secrets)
// see a pending value from Stage on, before the agent sets it downstream.
// Read such keys through this package, or pin the version, where that
// matters.
//
// The rotation record of a key is a KV v2 secret beside it, its path plus
// RecordSuffix (secret/mcp/db.rotation), whose fields are those of
// secrets.Rotation ("vault kv get secret/mcp/db.rotation" shows how far a
// rotation went). SaveRotation writes it with check-and-set on the version
// number that is its Revision, so exactly one of two agents racing for a
// key's record wins. A key's marks and record belong to the secret, not to
// a ?field= selection of it: two fields of one secret rotate one at a time.
// With ?field=<name> Stage writes the current version with that one field
// replaced; without, the value must be a JSON object, the whole secret.
//
// What check-and-set covers, and what it does not. Vault's cas applies to
// data writes, not to metadata: Stage's version and SaveRotation's record
// are conditional in Vault itself; Promote, Discard and RemovePrevious read
// the metadata, check the condition, and then write the marks. Stage writes
// its marks before its version (so no reader ever sees the new version
// unmarked) and they are not conditional either. Writers of one key are
// kept apart by its rotation record, which the agent takes before it
// stages and holds until it ends: the contract of secrets.Stager for
// backends without metadata check-and-set. Without it, a Stage that reads
// the metadata just before a Promote of the same key completes could mark
// the old version current again. Two more consequences: a version written
// without cas by another tool in the instant between Stage's two requests
// is taken for the pending one (Stage fails with secrets.ErrConflict), and
// so is the next version written by anyone after a Stage that died between
// its two requests, until a Promote or Discard; the agent's record shows
// such a rotation as started.
//
// Limits of KV v2 that bear on rotation: custom metadata holds at most 64
// keys of up to 128 bytes with values of up to 512 bytes (the marks take
// three short ones); max_versions (10 unless configured) must leave room
// for the current version and the pending one: Stage refuses, with
// secrets.ErrInvalid, a key whose own max_versions would prune the current
// version, but cannot see a mount-wide setting (a mount with max_versions 1
// cannot rotate: the current version would be pruned and the key read as
// not found). A version deleted by delete_version_after while pending is
// no longer pending. cas_required on the key or mount is honoured: every
// write of this package carries cas.
//
// # Database secrets engine
//
// Static roles (database/static-creds/<role>). Vault owns the password of an
// existing database user and changes it on the role's schedule
// (rotation_period or rotation_schedule) or when asked
// (database/rotate-role/<role>), with no overlap: the old password stops
// working at once. The value is the response's data without its schedule
// fields (ttl, last_vault_rotation, rotation_period, rotation_schedule,
// rotation_window), so it changes only when the password does; the version
// id is the time of the last rotation (last_vault_rotation, as Vault writes
// it), the same in every process; there is no previous version. Each read
// sets Versions.RefreshBy to one second after the rotation Vault announces
// (now + ttl), so the Store reads the role again just after it rotates, then
// keeps its usual TTL; while Vault is late (it reports ttl 0: its rotation
// queue runs every five seconds, and retries a failed rotation after ten)
// the source asks again every two seconds; a response without a numeric ttl
// sets no RefreshBy, and the Store's TTL alone applies. A rotation on
// request is not announced: the Store sees it at its next poll (its TTL), or
// at once when a call wrapped by secrets.Call, WrapTool or Transport meets
// the refused password, which forces a refresh and retries the call.
//
// Dynamic credentials (database/creds/<role>). Each read of the role makes
// a new database user with a lease; the value is the pair Vault gave, and
// the version id secrets.ContentVersion of it. The source holds one lease per
// role, shared by every key that names the role (#username, #password,
// ?field=), so the halves always come from one pair, and never reads a new
// pair while the one it holds is good: Fetch, Refresh and Reload serve the
// held pair after checking that Vault still has its lease. The lease's life:
//
//   - At a fraction of each term (WithLeaseFraction, default two thirds:
//     DefaultLeaseFraction), the source renews the lease, asking for its
//     first duration again; the Store is asked to refresh the key then
//     (Versions.RefreshBy), and that refresh makes the renewal. Renewal
//     happens as the Store's background refresh; a Source used without a
//     Store renews when Fetch is called after that point.
//   - When the lease cannot be renewed for a full term (the role's max_ttl
//     is near, Vault refuses the renewal as not renewable, the token's
//     policy lacks sys/leases/renew, or the token that read the pair was
//     replaced by a new login), the source reads a new pair at once, in the
//     same refresh. When the renewals are made on time, the old lease then
//     has at least the rest of a term left (a third of one by default: the
//     renewal before was granted a full term), time for the Store's
//     validators to log in with the new pair and for a pool to move to it.
//   - The pair replaced is served as Versions.Previous until its lease ends,
//     so that a pool can drain to the new one; the Store is asked to come
//     back at that end to drop it. A lease that Vault no longer has (revoked
//     from outside, or with the token that read it) is dropped at once, not
//     kept as previous, and a new pair is read.
//   - A renewal that fails otherwise (Vault sealed or unreachable: HTTP 503;
//     the database refusing to extend the user: Vault's 400 "failed to renew
//     entry") fails the refresh with secrets.ErrTransient: the Store keeps
//     serving the pair, which works until its lease ends, and retries with
//     its backoff.
//
// Times are on the source's clock (WithClock), and Vault's TTLs, which are
// durations, are counted from just before the request that reported them.
// Give a Store and its Source the same clock.
//
// The token's own lifetime bounds the leases it reads: Vault revokes a
// token's leases when the token expires or is revoked. The source reads a
// new pair with the new token after a login (see Token lifecycle), and
// serves the old pair as previous only while both its lease and its token
// live: it looks up the lease, and the old token (auth/token/lookup-self),
// first. Give the token a max TTL well above the role's max_ttl so that
// this is rare.
//
// Close does not revoke the leases (nor does it revoke the token): they end
// with their TTL, which on the database side drops the users. A revocation
// would drop a user whose sessions may still serve requests (a pool
// draining after Close, the old process of a rolling deployment), and the
// token usually lacks the capability; a short default_ttl on the role
// bounds what is left behind. WithRevokeOnClose revokes them on Close.
//
// WithLeaseEvents reports each step of a lease (read, renewed, ending, lost,
// expired, revoked) with the role, the pair's version and the TTL, never
// the lease id or the credential.
//
// The engine makes and rotates its own credentials: the writes of Rotation
// (Stage, Promote, Discard, RemovePrevious, SaveRotation) fail with
// secrets.ErrInvalid and errors.ErrUnsupported for its keys, and
// LoadRotation gives the zero Rotation.
//
// # Polling cost
//
// What each operation costs, in Vault requests:
//
//	KV v2 Fetch (first load, Refresh, Reload)   3: metadata, current data, previous data (2 without a previous)
//	  ... while a version is pending            + 1: the pending version's data
//	KV v2 background poll, unchanged            1: metadata
//	  ... after a rotation                      + 1: the new version's data (the old current becomes previous)
//	  ... after a Stage                         + 1: the pending version's data (a Promote then costs nothing more)
//	KV v1 Fetch or poll                         1: the value
//	static role Fetch or poll                   1: the credentials (no cheaper read says whether they changed)
//	dynamic role Fetch or poll                  1: a lease lookup, or the renewal when due
//	  ... when a new pair is needed             + 1: the credentials (a new database user)
//	  ... after a new login of the source       + 1: lookup-self of the old token (the lease lookup is the poll's)
//	Close with WithRevokeOnClose                1 per lease held
//	first request for a key under a mount       + 1: mount detection, unless declared with WithMount
//	first request of the Source                 + 1: lookup-self of the client's token, or a login
//
// The Store polls with FetchIfChanged (secrets.ChangeDetector), which reads
// only the metadata when nothing moved: no secret value crosses the network
// and Vault's audit log records a metadata read, not a secret read.
//
// # Token lifecycle
//
// At the first request the source looks up the client's token
// (auth/token/lookup-self, which Vault's default policy allows) to learn
// its TTL, or, with no token and WithAuth, logs in. Then:
//
//   - A token that expires and can be renewed is renewed in the background
//     by an api.LifetimeWatcher: at once, then at about two thirds of each
//     lease, until it reaches its maximum TTL. Close stops it.
//   - When the token can be renewed no further (maximum TTL reached, or not
//     renewable and about to expire), the source logs in again through the
//     WithAuth method before the token expires, retrying with backoff (one
//     second doubling to a minute) if the login fails.
//   - When Vault refuses a request with 403 because the token is invalid
//     (expired, revoked), the source logs in again and retries the request
//     once. A 403 that a policy causes (the token is still valid: Vault does
//     not say "invalid token", or the token can look itself up) is returned
//     as secrets.ErrPermission without a login, so a denied path does not
//     mint a token per poll.
//   - Requests never race with a token change: each request runs with the
//     token current when it started, and a new token replaces the old one
//     atomically for the requests that follow. Concurrent requests rejected
//     for the same token share one login.
//
// Without WithAuth the source renews the client's token while Vault allows
// and, once it expires, fails with secrets.ErrPermission. A root token, or
// any token with no TTL, is used as it is. WithTokenEvents reports each step
// (adopted, logged in, renewed, renewal ended, login failed) with the token's
// TTL and accessor, never the token. Tokens the source logged in for are not
// revoked on Close; they expire with their TTL.
//
// # Errors
//
// Errors wrap the sentinels of package secrets, and the api package's error
// as well (errors.As finds an *api.ResponseError):
//
//	404, a latest version deleted or destroyed, no version written,
//	a database role that does not exist (400 "unknown role")          secrets.ErrNotFound
//	403 (after the one login it may cause), 401, a refused login     secrets.ErrPermission
//	429, 412, 408, 5xx but 501 (503: sealed, standby, unavailable),
//	a database that refuses to create or extend a user,
//	timeouts, connection errors                                       secrets.ErrTransient
//	a malformed key, a field missing, a mount that is neither KV
//	nor database, an undecodable response, other 4xx                 secrets.ErrInvalid
//
// A canceled context is not classified: errors.Is(err, context.Canceled)
// holds. Messages name the operation and the Vault path, which tells which
// capability a policy lacks, and never hold a value:
//
//	vault: read "secret/metadata/mcp/db": permission denied: HTTP 403: 1 error occurred: * permission denied
//
// The api client retries 5xx responses twice by default, waiting 1 to 1.5
// seconds each time, which would hide an unavailable Vault from the Store
// for seconds per call. The source's copy of the client retries once, after
// 125 to 250 milliseconds (WithMaxRetries, WithMaxRetryWait); beyond that
// the Store's backoff, with its jitter, sets the pace.
//
// # Policy
//
// A consumer only reads. For the keys under secret/mcp/ of a KV v2 mount:
//
//	path "secret/data/mcp/*"     { capabilities = ["read"] }
//	path "secret/metadata/mcp/*" { capabilities = ["read"] }
//
// The rotation agent also writes versions and records (create, update),
// patches the marks (patch) and soft-deletes discarded versions:
//
//	path "secret/data/mcp/*"     { capabilities = ["create", "read", "update"] }
//	path "secret/metadata/mcp/*" { capabilities = ["read", "patch"] }
//	path "secret/delete/mcp/*"   { capabilities = ["update"] }
//
// A write the policy denies fails with secrets.ErrPermission and leaves the
// key as it was (a Stage whose version is refused after its marks were
// written puts the marks back).
//
// For KV v1, read on the secret's own path ("legacy/mcp/*"). For the
// database engine, read on the roles' credentials; renewing and looking up
// leases (sys/leases/renew, sys/leases/lookup) is in Vault's default policy,
// and revoking them on Close (WithRevokeOnClose) is not:
//
//	path "database/creds/app"        { capabilities = ["read"] }
//	path "database/static-creds/app" { capabilities = ["read"] }
//	path "sys/leases/revoke"         { capabilities = ["update"] }  # WithRevokeOnClose only
//
// Mount
// detection needs no rule of its own: Vault answers
// sys/internal/ui/mounts/<key> for a token that has any capability under the
// mount (and refuses with 403 otherwise, or for a key under no mount); with
// every mount declared by WithMount it is never called. Token renewal and
// lookup use auth/token/renew-self and auth/token/lookup-self, which the
// default policy grants.
package vault
