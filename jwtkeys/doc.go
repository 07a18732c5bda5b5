// Package jwtkeys verifies and signs JWTs with keys that rotate: a Verifier
// accepts tokens signed with the current key of a secret, and with the
// previous key for a grace period after a rotation; a Signer signs with the
// current key. The keys come from a secrets.Store, so they change without a
// restart and without a failed request.
//
//	store, _ := secrets.New(src)            // polls the backend, serves the latest version
//	verifier, _ := jwtkeys.NewVerifier(store, "jwt-signing-key",
//		jwtkeys.WithIssuer("https://auth.example.com"),
//		jwtkeys.WithAudience("mcp"))
//	tok, err := verifier.Verify(ctx, bearer) // err is an *Error; errors.Is(err, jwtkeys.ErrExpired) ...
//
// The package is built on github.com/golang-jwt/jwt/v5 (at a version with
// the fix for CVE-2025-30204) and imports no MCP code; the subpackage
// jwtkeys/mcpauth adapts a Verifier to the MCP Go SDK's bearer-token
// middleware.
//
// # How a rotation works
//
// A secret's versions give the keys: the current version holds the current
// key and the version before it (AWSCURRENT and AWSPREVIOUS, Vault KV n and
// n-1, what a file held before it changed) holds the previous one. The
// Verifier reads both with one call to Store.Versions, from one snapshot, so
// a rotation in the middle of a verification cannot pair a new current key
// with an old previous one.
//
// A rotation, seen from one process:
//
//	t0  the backend gets version 2; version 1 becomes previous
//	t1  the Store serves it (its next poll, a Refresh, a watch, a Reload)
//	    the Verifier loads it on its next Verify: the rotation is "seen";
//	    the grace period starts: until t1 + grace, version 1 still verifies
//	    the Signer signs with version 2 from now on
//	t1 + grace  tokens signed with version 1 are refused with ErrKeyRetired
//
// The grace period (WithGracePeriod, default DefaultGracePeriod: one hour)
// must cover the longest lifetime of a token plus the time a rotation takes
// to reach every process: signers and verifiers poll their own Stores, so a
// signer elsewhere may go on signing with the old key for up to one polling
// interval after this verifier has moved on. Tokens signed before a rotation
// expire on their own; the grace period only bounds how long the old key is
// trusted for them.
//
// The period is measured from when this Verifier first loaded the new keys,
// which is the only moment it can know of. A process that starts after a
// rotation therefore opens a full period of its own: restarts re-open the
// window. Two ways bound it for good: remove the previous version from the
// backend (an empty or missing previous key is never used, so this revokes
// it at once, and is the right move when a key has leaked), or keep both keys
// in one secret with a rotated_at time (below), from which every process
// measures the period.
//
// A Verifier's keys only move forward. A verification that read the versions
// before a rotation, and goes on after another one has loaded the new keys,
// uses the new keys too: it never puts the older ones back, and the grace
// period of a rotation starts once, when its keys are first loaded.
//
// # What to watch
//
// Verifier.Stats returns the counters: tokens verified with the current key,
// with the previous key, and refused, by Reason. During a rotation the one to
// watch is Stats.PreviousSinceRotation (also Verifier.VerifiedWithPrevious),
// with Stats.LastPreviousUse: each count is a client still holding a token
// signed with the old key. When it stops growing for longer than your longest
// token lifetime, no live token depends on the old key, and it can be revoked
// before the grace period ends. Refusals with ReasonKeyRetired after
// Stats.GraceEnds are clients whose tokens outlived the period: a sign that
// it is shorter than your token lifetime. A rise of ReasonSignature or
// ReasonUnknownKey after a rotation points to signers that have not seen it.
// Stats.KeyError and Stats.PreviousKeyError say why key material was refused.
//
// # Key material
//
// The secret's value is detected as one of these (WithKeyFormat declares it
// instead):
//
//   - A JSON object (first non-space byte '{'): with a "current" member, a
//     pair (below); with "keys", a JWK Set (RFC 7517); with "kty", a JWK.
//     Any other JSON object is refused.
//   - PEM (starts with "-----BEGIN "): PUBLIC KEY (PKIX), PRIVATE KEY
//     (PKCS #8), RSA PUBLIC KEY and RSA PRIVATE KEY (PKCS #1), EC PRIVATE KEY
//     (SEC 1; an EC PARAMETERS block before it is skipped). Several blocks
//     are several keys. Encrypted PEM and certificates are refused.
//   - "base64:" followed by base64 (standard or URL alphabet, padding
//     optional): an HMAC key, decoded.
//   - Anything else: an HMAC key, used as is. If the value is UTF-8 text,
//     surrounding whitespace (the newline an editor or echo adds) is
//     trimmed; binary values are used byte for byte.
//
// An HMAC secret is never base64-decoded by guesswork: a hex or
// base64-looking string is used as the text it is, as most JWT libraries do,
// so that every service given the same secret derives the same key. Declare
// FormatHMACBase64, or write the "base64:" prefix, for a secret stored in
// base64; declare FormatHMAC to use a value exactly as stored, whitespace
// included.
//
// Keys are refused when loaded if they are weak, malformed or unusable: an
// HMAC key of fewer than 32 bytes, an RSA modulus outside 2048 to 8192 bits,
// an RSA public exponent that crypto/rsa does not verify with (even, below 3,
// or above 2³¹−1), an elliptic curve other than P-256, P-384 and P-521, an
// inconsistent private JWK, a value over MaxKeyMaterialSize. A JWK Set skips the keys that are not for
// signatures ("use" other than "sig", key_ops without "verify" or "sign") or
// of a type it does not know, but refuses the whole set if a key of a known
// type is malformed or weak. A Verifier uses the public half of a private
// key; a Signer needs a private key or an HMAC secret.
//
// # One secret holding both keys
//
// A secret may hold the pair itself, for backends that keep no previous
// version or for keys that must rotate together with other data:
//
//	{"current": <key>, "previous": <key>, "rotated_at": "2025-06-01T12:00:00Z"}
//
// Each key is a string (PEM, "base64:...", or an HMAC secret) or a JWK or JWK
// Set object. "previous" may be absent, null or "". "rotated_at" (RFC 3339,
// optional) is when the previous key was replaced; the grace period then
// runs from it, or from when the Verifier first saw the keys if that is
// earlier. The secret's own previous version is not used in this form.
//
// # Key ids
//
// A Signer sets the header's kid: the JWK's own kid, else the secret's
// version id, else (for a key from a pair, where one version holds two keys)
// the key's RFC 7638 thumbprint, which does not change when the key moves
// from current to previous. A token that carries a kid is verified only with
// the key (or keys) of that kid; a kid that names no key is refused with
// ErrUnknownKey, however it is spelled (kids are looked up in memory, never
// used as paths or queries). A token without kid is tried with the current
// keys, then the previous ones; when all fail, the error is that of the
// first key tried.
//
// # What is refused
//
// Each key type pins its algorithms: HS256 (HS384, HS512 for keys of 48, 64
// bytes and more, per RFC 7518) for an HMAC key; RS256, RS384, RS512, PS256,
// PS384, PS512 for RSA; ES256, ES384 or ES512 by curve; EdDSA for Ed25519. A
// JWK's alg narrows them to one, and WithAlgorithms narrows them further.
// A token whose alg its key does not accept is refused with ErrAlgorithm:
// "none" always is, and so is algorithm confusion (a token signed with HS256
// using an RSA public key as the secret). The implementation of each
// algorithm is pinned too, not looked up from the token.
//
// Before any decoding, a token longer than WithMaxTokenSize (default
// DefaultMaxTokenSize, 8 KiB) is refused with ErrTooLarge, and one with other
// than exactly two dots with ErrMalformed. Segments must be canonical
// base64url without padding. A header with "crit" is refused (no extension is
// supported); "jku", "jwk", "x5u" and "x5c" are ignored: keys come only from
// the secret.
//
// exp is required unless WithExpirationOptional; exp, nbf and iat are checked
// against the clock (WithClock) with a leeway (WithLeeway, default
// DefaultLeeway, at most MaxLeeway); WithIssuer and WithAudience require
// those claims. A claims type with a Validate method (jwt.ClaimsValidator)
// has it run too.
//
// # Claim names
//
// Claim names are case-sensitive (RFC 7519), but encoding/json, through
// which golang-jwt decodes claims into a struct such as jwt.RegisteredClaims,
// matches member names to fields without regard to case (with Unicode
// folding: "ſub" is "sub") and keeps the last match. Signed as
// {"iss":"a","ISS":"b"}, a token's issuer is "b" to a struct and "a" to
// jwt.MapClaims and to JWT libraries in other languages; {"exp": <past>,
// "Exp": <future>} is unexpired to a struct and expired to the others. Of
// exact duplicates ({"iss":"a","iss":"b"}) golang-jwt keeps the last, as
// RFC 7519 allows; some libraries keep the first, some refuse the token. So
// that every reader of a token agrees on its claims, a Verifier refuses,
// with ErrClaims and ErrDuplicateClaim, a token whose claims name a member
// twice, also in two spellings that differ only in case, or name a
// registered claim (iss, sub, aud, exp, nbf, iat, jti) in another case,
// whatever the claims type. The check runs once the signature has verified,
// so such a refusal means that a key you trust signed those claims: look
// for a signer that copies names from its input into tokens.
//
// Only the claims' own members are checked; nested objects are left to the
// claims type. A lone member of your own claims is still matched to a field
// without regard to case ("ROLE" fills a field tagged "role"): decode into
// jwt.MapClaims, or check in the type's Validate method, where that matters.
// Claims that are JSON but not an object (null) are refused with
// ErrMalformed. The header is decoded into a map: of a header parameter
// given twice, the last is used.
//
// # A token's string is not its identity
//
// ECDSA signatures are malleable: from a token signed with ES256, ES384 or
// ES512, anyone who holds it can compute a second valid signature (s
// replaced by n−s), which makes a different token string with the same
// header and claims, and it verifies. ECDSA and RSA-PSS signers also write
// a different string each time they sign the same claims. Never use a
// token's string, or a hash of it, as a replay-cache or revocation key: use
// its jti claim (with iss), which a change of signature cannot alter.
//
// Every failure is an *Error whose Reason names the class, matched by
// errors.Is with that reason's sentinel. No error holds any part of a token
// or of a key: messages are fixed text, the secret's key name and version id,
// and errors from package secrets, which hold no values either.
//
// # Performance
//
// Keys are parsed once per version, not per token. A Verifier keeps the
// parsed keys behind an atomic pointer, tagged with the Secrets they came
// from; a verification reads the Store's snapshot, compares two pointers and
// goes on to golang-jwt's own parsing and signature check. A refresh that
// brings the same values costs one comparison; only a real change parses
// again. Verify costs within a few percent of golang-jwt parsing with a fixed
// key (see BenchmarkVerify and BenchmarkBareJWT).
//
// Verifiers and Signers are safe for concurrent use, start no goroutine and
// hold nothing that needs closing; they stop working when their Store is
// closed.
package jwtkeys
