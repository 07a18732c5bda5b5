package jwtkeys

import (
	"errors"
	"strconv"
)

// A Reason classifies why a token was refused or a key could not be used. Its
// String form is short and stable, fit for a metric label.
type Reason uint8

// The reasons, each with the sentinel error that errors.Is finds in an *Error
// of that reason.
const (
	ReasonMalformed      Reason = iota + 1 // ErrMalformed
	ReasonTooLarge                         // ErrTooLarge
	ReasonAlgorithm                        // ErrAlgorithm
	ReasonUnknownKey                       // ErrUnknownKey
	ReasonSignature                        // ErrSignature
	ReasonKeyRetired                       // ErrKeyRetired
	ReasonExpired                          // ErrExpired
	ReasonNotYetValid                      // ErrNotYetValid
	ReasonIssuer                           // ErrIssuer
	ReasonAudience                         // ErrAudience
	ReasonClaims                           // ErrClaims
	ReasonKeyUnavailable                   // ErrKeyUnavailable

	numReasons = int(ReasonKeyUnavailable) + 1
)

// The sentinel errors, one per Reason. Every error that Verify, VerifyClaims
// and Sign return is an *Error that errors.Is matches against exactly one of
// them.
var (
	// ErrMalformed: the token is not a compact JWS of three base64url
	// segments with a JSON header and JSON claims, or its header asks for
	// something this package does not do (a "crit" extension, a kid that is
	// not a string).
	ErrMalformed = errors.New("token is malformed")
	// ErrTooLarge: the token is longer than the maximum size (see
	// WithMaxTokenSize); it was refused before any parsing.
	ErrTooLarge = errors.New("token is too large")
	// ErrAlgorithm: the token's alg is not one the key accepts: "none", an
	// unknown algorithm, or one of another key type (algorithm confusion,
	// such as HS256 against an RSA key).
	ErrAlgorithm = errors.New("token algorithm is not accepted")
	// ErrUnknownKey: the token names a kid that no loaded key has.
	ErrUnknownKey = errors.New("token names an unknown key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("token signature is invalid")
	// ErrKeyRetired: the token was signed with the previous key, and the
	// grace period after the rotation has ended.
	ErrKeyRetired = errors.New("token is signed with a retired key")
	// ErrExpired: the exp claim is in the past, beyond the leeway.
	ErrExpired = errors.New("token is expired")
	// ErrNotYetValid: the nbf or the iat claim is in the future, beyond the
	// leeway.
	ErrNotYetValid = errors.New("token is not valid yet")
	// ErrIssuer: the iss claim is missing or not the expected issuer.
	ErrIssuer = errors.New("token has the wrong issuer")
	// ErrAudience: the aud claim is missing or names none of the expected
	// audiences.
	ErrAudience = errors.New("token has the wrong audience")
	// ErrClaims: another claims check failed: exp missing, a claim of the
	// wrong JSON type, member names that JSON decoders read differently
	// (the cause is then ErrDuplicateClaim), the claims type's own Validate
	// method, claims that cannot be encoded when signing.
	ErrClaims = errors.New("token claims are invalid")
	// ErrKeyUnavailable: no usable key: the Store could not serve the secret
	// (the cause wraps the secrets error), or its key material is unusable
	// (the cause wraps ErrInvalidKey or ErrNoSigningKey).
	ErrKeyUnavailable = errors.New("no usable key")
)

// Causes of ErrKeyUnavailable that concern the key material itself.
var (
	// ErrInvalidKey: the secret's value is not key material this package
	// accepts: unrecognised or malformed, an unsupported key type or curve,
	// a weak key (an HMAC key shorter than 32 bytes, an RSA modulus shorter
	// than 2048 bits), or a key crypto/rsa would refuse to verify with (an
	// RSA public exponent above 2³¹−1).
	ErrInvalidKey = errors.New("invalid key material")
	// ErrNoSigningKey: a Signer's secret holds no key that can sign (only
	// public keys).
	ErrNoSigningKey = errors.New("no signing key")
)

// A cause of ErrClaims.
var (
	// ErrDuplicateClaim: the token's claims name a member twice, or twice
	// in spellings that differ only in case ("iss" and "ISS"), or name a
	// registered claim (iss, sub, aud, exp, nbf, iat, jti) in another case.
	// JSON decoders read such claims differently: encoding/json, through
	// which golang-jwt decodes claims into a struct, matches member names
	// to fields without regard to case and keeps the last match, so
	// {"exp": <past>, "Exp": <future>} is unexpired to it and expired to
	// jwt.MapClaims and to JWT libraries in other languages, for which
	// names are case-sensitive (RFC 7519). A Verifier refuses such a
	// token, once its signature has verified, with ReasonClaims.
	ErrDuplicateClaim = errors.New("claim names are duplicated or a registered claim is spelled in another case")
)

var reasonInfo = [numReasons]struct {
	name string
	err  error
}{
	ReasonMalformed:      {"malformed", ErrMalformed},
	ReasonTooLarge:       {"too_large", ErrTooLarge},
	ReasonAlgorithm:      {"algorithm", ErrAlgorithm},
	ReasonUnknownKey:     {"unknown_key", ErrUnknownKey},
	ReasonSignature:      {"signature", ErrSignature},
	ReasonKeyRetired:     {"key_retired", ErrKeyRetired},
	ReasonExpired:        {"expired", ErrExpired},
	ReasonNotYetValid:    {"not_yet_valid", ErrNotYetValid},
	ReasonIssuer:         {"issuer", ErrIssuer},
	ReasonAudience:       {"audience", ErrAudience},
	ReasonClaims:         {"claims", ErrClaims},
	ReasonKeyUnavailable: {"key_unavailable", ErrKeyUnavailable},
}

// String returns the reason's short name, such as "expired" or "key_retired".
func (r Reason) String() string {
	if int(r) > 0 && int(r) < numReasons {
		return reasonInfo[r].name
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Err returns the sentinel error of the reason, or nil for an unknown one.
func (r Reason) Err() error {
	if int(r) > 0 && int(r) < numReasons {
		return reasonInfo[r].err
	}
	return nil
}

// Reasons returns every Reason, in order.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := Reason(1); int(r) < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// An Error reports a refused token or an unusable key. Its message names the
// operation, the secret's key (a name, never a value) and the reason; it never
// holds any part of the token or of the key material.
//
// errors.Is finds the Reason's sentinel (ErrExpired, ErrSignature, ...), the
// cause in Err, and for claims failures also golang-jwt's own sentinel (such
// as jwt.ErrTokenExpired), so code written against golang-jwt keeps working.
type Error struct {
	Op     string // "verify", "sign", "load" or "validate"
	Key    string // the secret's key, as passed to NewVerifier or NewSigner
	Reason Reason
	// Err is the cause, or nil. Its message comes from this package or from
	// package secrets, never from the token or the key material.
	Err error

	jwtErr error // a golang-jwt sentinel, for errors.Is only
}

// Error returns "jwtkeys: ", the operation, the quoted key name, the reason
// and the cause, if any.
func (e *Error) Error() string {
	msg := "jwtkeys: " + e.Op
	if e.Key != "" {
		msg += " " + quote(e.Key)
	}
	if err := e.Reason.Err(); err != nil {
		msg += ": " + err.Error()
	} else {
		msg += ": " + e.Reason.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the Reason's sentinel, the cause, and the golang-jwt
// sentinel where there is one.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 3)
	if err := e.Reason.Err(); err != nil {
		out = append(out, err)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	if e.jwtErr != nil {
		out = append(out, e.jwtErr)
	}
	return out
}

// detail is a fixed message of this package, used as an Error's cause. It
// exists so that a cause can never be built from input by mistake: its text
// is a constant at every call site.
type detail string

func (d detail) Error() string { return string(d) }

// keyError is a key-material failure: ErrInvalidKey or ErrNoSigningKey with a
// fixed explanation and, where useful, the version id it concerns.
type keyError struct {
	class   error  // ErrInvalidKey or ErrNoSigningKey
	version string // the secret version, when known; "" otherwise
	what    string // which key in the value: "current", "previous", "keys[2]"; may be ""
	msg     detail
}

func (e *keyError) Error() string {
	s := e.class.Error()
	if e.version != "" {
		s += " (version " + quote(e.version) + ")"
	}
	if e.what != "" {
		s += " in " + e.what
	}
	return s + ": " + string(e.msg)
}

func (e *keyError) Unwrap() error { return e.class }

func invalidKey(msg detail) *keyError { return &keyError{class: ErrInvalidKey, msg: msg} }

// quote quotes a name for a message, bounded in length so that an odd key
// name cannot flood a log line.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
