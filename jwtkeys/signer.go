package jwtkeys

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/secrets"
)

// A Signer signs JWTs with the current key of one secret of a Store. After a
// rotation it signs with the new key as soon as its Store serves it.
//
// A Signer is safe for concurrent use, starts no goroutine and needs no Close.
type Signer struct {
	ring keyring
	cfg  config
}

// NewSigner returns a Signer for the key material in the secret key of store.
// The material must hold a private key or an HMAC secret; with several keys
// (a JWK Set, a PEM bundle), the first that can sign is used. It does no I/O:
// the secret is read and parsed on the first Sign (or Load).
func NewSigner(store *secrets.Store, key string, opts ...Option) (*Signer, error) {
	if store == nil {
		return nil, errors.New("jwtkeys: NewSigner: nil Store")
	}
	if key == "" {
		return nil, errors.New("jwtkeys: NewSigner: empty key")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.clock == nil {
		cfg.clock = store.Clock()
	}
	s := &Signer{cfg: cfg}
	s.ring = keyring{store: store, name: key, cfg: &s.cfg, role: roleSign, lock: make(chan struct{}, 1)}
	return s, nil
}

// Load reads and parses the key material now, and returns the error that
// Sign would report for the key, or nil.
func (s *Signer) Load(ctx context.Context) error {
	_, err := s.current(ctx, "load")
	return err
}

func (s *Signer) current(ctx context.Context, op string) (*key, error) {
	ks, err := s.ring.get(ctx)
	if err != nil {
		return nil, &Error{Op: op, Key: s.ring.name, Reason: ReasonKeyUnavailable, Err: err}
	}
	if ks.err != nil {
		return nil, &Error{Op: op, Key: s.ring.name, Reason: ReasonKeyUnavailable, Err: ks.err}
	}
	return ks.signer, nil
}

// Sign returns claims signed with the current key, as a compact JWS. The
// header's alg is the key's first accepted algorithm (HS256, RS256, ES256,
// ES384, ES512 or EdDSA by key type, or the first of WithAlgorithms that the
// key accepts, or the JWK's own alg), and its kid is the JWK's kid or else the
// secret's version id (the key's thumbprint for a current/previous pair), so
// that a Verifier picks the right key without trying the others.
//
// Unless WithExpirationOptional is given, claims without exp are refused
// with ErrClaims: a token that never expires outlives every rotation.
func (s *Signer) Sign(ctx context.Context, claims jwt.Claims) (string, error) {
	if claims == nil {
		return "", &Error{Op: "sign", Key: s.ring.name, Reason: ReasonClaims, Err: detail("nil claims")}
	}
	if !s.cfg.expOptional && !hasExp(claims) {
		return "", &Error{Op: "sign", Key: s.ring.name, Reason: ReasonClaims,
			Err: detail("exp is missing"), jwtErr: jwt.ErrTokenRequiredClaimMissing}
	}
	k, err := s.current(ctx, "sign")
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(methods[k.algs[0]], claims)
	if k.kid != "" {
		t.Header["kid"] = k.kid
	}
	str, err := t.SignedString(k.priv)
	if err != nil {
		// json.Marshal's errors can quote claim values; say only what failed.
		if _, serr := t.SigningString(); serr != nil {
			return "", &Error{Op: "sign", Key: s.ring.name, Reason: ReasonClaims, Err: detail("claims cannot be encoded as JSON")}
		}
		return "", &Error{Op: "sign", Key: s.ring.name, Reason: ReasonKeyUnavailable, Err: detail("signing failed")}
	}
	return str, nil
}

// hasExp reports whether claims carry an exp. A jwt.MapClaims built in Go
// may hold exp as an integer, which its GetExpirationTime does not take
// (it expects what JSON decoding yields); the encoded form decides then.
func hasExp(claims jwt.Claims) bool {
	exp, err := claims.GetExpirationTime()
	if err == nil {
		return exp != nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return true // let signing report the encoding failure
	}
	var c struct {
		Exp *jwt.NumericDate `json:"exp"`
	}
	return json.Unmarshal(b, &c) == nil && c.Exp != nil
}
