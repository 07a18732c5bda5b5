package rotate

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
)

// HS256 names an HMAC signing key (HS256; a key of 48 or 64 bytes or more
// also signs HS384, HS512), for JWTKey.Algorithm beside Ed25519, ES256 and
// RS256.
const HS256 KeyAlgorithm = "HS256"

// ErrKeySpec: a JWTKey asks for a key this package does not make or that
// would be too weak: an unknown algorithm, an RSA key shorter than 2048
// bits, an HMAC key shorter than 32 bytes, an encoding it does not write.
// Check reports it, wrapped with ErrNotRotatable, before anything is
// written.
var ErrKeySpec = errors.New("unsupported key specification")

// A JWTEncoding is how JWTKey writes a new key into the store. Both are
// forms package jwtkeys reads.
type JWTEncoding string

// The encodings of JWTKey.
const (
	// EncodeJWK writes a private JWK (RFC 7517) with "kid", "alg" and
	// "use": "sig"; an HMAC key as an "oct" JWK. A jwtkeys Signer signs with
	// the JWK's kid, which stays the key's own wherever the value is copied.
	EncodeJWK JWTEncoding = "jwk"
	// EncodePEM writes a PKCS #8 "PRIVATE KEY" PEM block, and an HMAC key
	// as "base64:" followed by standard base64. The kid a jwtkeys Signer
	// puts in tokens is then the secret's version id.
	EncodePEM JWTEncoding = "pem"
)

// JWTKey is a Target that rotates a JWT signing key: a secret that a
// jwtkeys Signer signs with and that jwtkeys Verifiers verify with, its
// current version holding the current key and its previous version the one
// before (see package jwtkeys, "How a rotation works").
//
// Nothing lies downstream of a signing key but its consumers, who read it
// from the store, so the steps of a rotation are:
//
//   - check: the current value is key material jwtkeys reads, and the
//     JWTKey asks for a key it can make (ErrNotRotatable wrapping
//     jwtkeys.ErrInvalidKey or ErrKeySpec otherwise; nothing is written);
//   - next: a new key from crypto/rand (HMACKey, KeyPair) with a kid, in
//     Encoding;
//   - set: nothing to set; it proves that the key set verifiers will read
//     during the overlap (the new key current, the old one previous)
//     accepts a token of the new key and, when the current value can sign,
//     one of the old key, and that the two keys have different kids. It
//     returns the kids as notes ("kid", "previous_kid");
//   - verify: a token signed with the new key by a jwtkeys Signer verifies
//     with a jwtkeys Verifier, both given Options and built over the staged
//     version alone;
//   - promote: the Agent's; Signers sign with the new kid once their Store
//     serves it, and Verifiers still accept the old kid as previous;
//   - overlap: MinOverlap, the verifiers' grace period plus
//     MinOverlapFactor × the consumers' TTL: pass
//     WithOverlap(k.MinOverlap(consumerTTL)) to New;
//   - revoke: the Agent removes the previous version from the store
//     (secrets.PreviousRemover; JWTKey is a PreviousRetirer), so that a
//     token signed with the old key is refused everywhere, also by a
//     Verifier started after the rotation, whose own grace period would
//     otherwise open again (jwtkeys.ErrUnknownKey for a token with the old
//     kid, once a consumer's Store has seen the removal).
//
// With MinOverlap as the overlap, tokens signed with the old key stop
// verifying only once every Verifier that saw the rotation within
// MinOverlapFactor × TTL of the promotion had its full grace period, which
// jwtkeys asks to cover a token's lifetime and the time a rotation takes to
// reach every process. Whatever the overlap, the previous key is never
// removed before GracePeriod has passed since the promotion: until then
// InUse reports it in use (the Agent logs that it waits, up to
// WithOverlapDeadline), and Revoke refuses, leaving the rotation unfinished
// for a later run, which revokes.
//
// Restore has nothing to undo: a key that failed was never current, and the
// Agent discards it from the store.
//
// Errors name versions, kids, algorithms and steps, never key material: the
// parsing errors are jwtkeys', which hold none either.
//
// A JWTKey is safe for concurrent use once configured; its methods do not
// modify it. Set, Verify, and Check and Next when Algorithm is "", sign and
// verify probe tokens through throwaway secrets.Stores over the versions
// they check, each closed (its goroutines stopped) before the method
// returns.
type JWTKey struct {
	// Algorithm is the kind of key made: HS256, Ed25519 (EdDSA), ES256
	// (ECDSA P-256) or RS256 (RSA). "" keeps the kind of the current key,
	// which must then be one a Signer can sign with (a private key or an
	// HMAC secret) and of one of those kinds (an ES384 key is not).
	Algorithm KeyAlgorithm
	// RSABits is the size of a new RSA key: 0 means 2048; fewer than 2048
	// fails with ErrKeySpec.
	RSABits int
	// HMACBytes is the length of a new HMAC key: 0 means 32; fewer than 32
	// fails with ErrKeySpec.
	HMACBytes int
	// Encoding is how the new key is written; "" writes it as the current
	// value is written: EncodeJWK for a JSON value, EncodePEM otherwise
	// (PEM, "base64:", a raw HMAC secret). The new value always holds one
	// key: a JWK Set or a {"current", "previous"} pair is replaced by a
	// single JWK, and Verifiers read the replaced value, as previous, as
	// they read it before (a pair by its current key).
	Encoding JWTEncoding
	// GracePeriod is how long the consumers' Verifiers accept the previous
	// key (their jwtkeys.WithGracePeriod); 0 means
	// jwtkeys.DefaultGracePeriod (for Verifiers given 0, which refuse the
	// previous key at once, any positive value will do). The previous key
	// is removed no sooner than this after the promotion.
	GracePeriod time.Duration
	// Options are the jwtkeys options the consumers give their Verifiers
	// and Signers that bear on the key material (WithKeyFormat,
	// WithAlgorithms), so that check, set and verify read the key as they
	// do. A WithGracePeriod or WithClock here is overridden.
	Options []jwtkeys.Option
	// Clock times the probe tokens and the grace period; nil means
	// secrets.SystemClock. Give it the Agent's clock (WithClock).
	Clock secrets.Clock
}

var (
	_ Target          = (*JWTKey)(nil)
	_ PreviousRetirer = (*JWTKey)(nil)
)

// Defaults of JWTKey.
const (
	defaultHMACBytes = 32
	defaultRSABits   = 2048
	// probeLifetime is the lifetime of the tokens set and verify sign.
	probeLifetime = 5 * time.Minute
	// probeIssuer is the issuer of those tokens, which are never sent
	// anywhere.
	probeIssuer = "rotor/rotate: JWT key probe"
)

// notes kept in the rotation record.
const (
	noteKID         = "kid"
	notePreviousKID = "previous_kid"
)

func (k *JWTKey) clock() secrets.Clock {
	if k.Clock != nil {
		return k.Clock
	}
	return secrets.SystemClock
}

func (k *JWTKey) grace() time.Duration {
	if k.GracePeriod > 0 {
		return k.GracePeriod
	}
	return jwtkeys.DefaultGracePeriod
}

// MinOverlap returns the overlap to give the Agent (WithOverlap): the
// verifiers' grace period plus MinOverlapFactor × consumerTTL. A Verifier
// starts its grace period when its Store serves the new key, which may be
// that long after the promotion; so when the previous key is removed, every
// Verifier that saw the rotation in time has ended its own grace period,
// and the removal cuts nobody's short: it only closes the window that a
// Verifier started after the rotation would open again. It is more than
// both the grace period (below which Revoke refuses) and the Agent's own
// floor.
func (k *JWTKey) MinOverlap(consumerTTL time.Duration) time.Duration {
	return k.grace() + MinOverlapFactor*max(consumerTTL, 0)
}

// RetirePrevious reports true: once the overlap has passed, the Agent
// removes the previous version, the retired key, from the store.
func (k *JWTKey) RetirePrevious() bool { return true }

// spec checks the JWTKey's own fields, for alg (Algorithm, or the current
// key's kind).
func (k *JWTKey) spec(alg KeyAlgorithm) error {
	if k.GracePeriod < 0 {
		return fmt.Errorf("%w: grace period %v is negative", ErrKeySpec, k.GracePeriod)
	}
	switch k.Encoding {
	case "", EncodeJWK, EncodePEM:
	default:
		return fmt.Errorf("%w: encoding %q: want %q or %q", ErrKeySpec, k.Encoding, EncodeJWK, EncodePEM)
	}
	switch alg {
	case HS256:
		if k.HMACBytes != 0 && k.HMACBytes < defaultHMACBytes {
			return fmt.Errorf("%w: HMAC key of %d bytes: at least %d", ErrKeySpec, k.HMACBytes, defaultHMACBytes)
		}
	case RS256:
		if k.RSABits != 0 && k.RSABits < defaultRSABits {
			return fmt.Errorf("%w: RSA key of %d bits: at least %d", ErrKeySpec, k.RSABits, defaultRSABits)
		}
	case Ed25519, ES256:
	case "":
		return fmt.Errorf("%w: no algorithm given", ErrKeySpec)
	default:
		return fmt.Errorf("%w: key algorithm %q: want %s, %s, %s or %s", ErrKeySpec, alg, HS256, Ed25519, ES256, RS256)
	}
	return nil
}

// Generate returns a new key of Algorithm, which must be set, in Encoding
// (EncodeJWK when ""): the value to store as a secret's first version. The
// rotation's own keys come from Next. Errors wrap ErrKeySpec when the
// JWTKey asks for a key it does not make.
func (k *JWTKey) Generate() ([]byte, error) {
	if err := k.spec(k.Algorithm); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	enc := k.Encoding
	if enc == "" {
		enc = EncodeJWK
	}
	return k.generate(k.Algorithm, enc)
}

func (k *JWTKey) generate(alg KeyAlgorithm, enc JWTEncoding) ([]byte, error) {
	if alg == HS256 {
		n := k.HMACBytes
		if n == 0 {
			n = defaultHMACBytes
		}
		raw, err := HMACKey(n)
		if err != nil {
			return nil, fmt.Errorf("rotate: %w: %w", ErrKeySpec, err)
		}
		defer clear(raw)
		if enc == EncodePEM {
			return []byte("base64:" + base64.StdEncoding.EncodeToString(raw)), nil
		}
		return json.Marshal(jwkJSON{Kty: "oct", Kid: randomKID(), Alg: string(HS256), Use: "sig", K: b64u(raw)})
	}
	bits := k.RSABits
	if alg == RS256 && bits == 0 {
		bits = defaultRSABits
	}
	sk, err := KeyPair(alg, bits)
	if err != nil {
		if alg == RS256 && bits < defaultRSABits {
			return nil, fmt.Errorf("rotate: %w: %w", ErrKeySpec, err)
		}
		return nil, fmt.Errorf("rotate: generate a %s key: %w", alg, err)
	}
	if enc == EncodePEM {
		return sk.PrivatePEM, nil
	}
	return privateJWK(sk)
}

// jwkJSON is the JWK written for a new key: the members RFC 7518 defines for
// each key type, in the order RFC 7638 lists them after kty.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv,omitempty"`
	K   string `json:"k,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d,omitempty"`
	P   string `json:"p,omitempty"`
	Q   string `json:"q,omitempty"`
	DP  string `json:"dp,omitempty"`
	DQ  string `json:"dq,omitempty"`
	QI  string `json:"qi,omitempty"`
}

// privateJWK encodes a KeyPair's private key as a JWK with its kid.
func privateJWK(sk SigningKey) ([]byte, error) {
	block, _ := pem.Decode(sk.PrivatePEM)
	if block == nil {
		return nil, errors.New("rotate: generated key does not decode") // cannot happen: KeyPair wrote it
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	clear(block.Bytes)
	if err != nil {
		return nil, errors.New("rotate: generated key does not parse")
	}
	j := jwkJSON{Kid: sk.KID, Alg: string(sk.Algorithm), Use: "sig"}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		j.Kty, j.Crv = "OKP", "Ed25519"
		j.X, j.D = b64u(p.Public().(ed25519.PublicKey)), b64u(p.Seed())
	case *ecdsa.PrivateKey:
		pub, err := p.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, errors.New("rotate: generated ECDSA key does not encode")
		}
		d, err := p.Bytes()
		if err != nil {
			return nil, errors.New("rotate: generated ECDSA key does not encode")
		}
		n := (len(pub) - 1) / 2
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y, j.D = b64u(pub[1:1+n]), b64u(pub[1+n:]), b64u(d)
	case *rsa.PrivateKey:
		if len(p.Primes) != 2 {
			return nil, errors.New("rotate: generated RSA key is not two-prime")
		}
		p.Precompute()
		j.Kty = "RSA"
		j.N, j.E = b64u(p.N.Bytes()), b64u(big.NewInt(int64(p.E)).Bytes())
		j.D, j.P, j.Q = b64u(p.D.Bytes()), b64u(p.Primes[0].Bytes()), b64u(p.Primes[1].Bytes())
		j.DP, j.DQ, j.QI = b64u(p.Precomputed.Dp.Bytes()), b64u(p.Precomputed.Dq.Bytes()), b64u(p.Precomputed.Qinv.Bytes())
	default:
		return nil, fmt.Errorf("rotate: generated key of type %T", priv)
	}
	return json.Marshal(j)
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// randomKID returns a random key id for an HMAC key: 16 base64url
// characters (96 bits). It is drawn, not derived, so that it says nothing of
// the secret.
func randomKID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b64u(b)
}

// Check makes sure that current is key material jwtkeys reads (as Options
// declare), and that the JWTKey asks for a key it can make, of the current
// key's kind when Algorithm is "". Both failures wrap ErrNotRotatable, and
// jwtkeys.ErrInvalidKey or ErrKeySpec.
func (k *JWTKey) Check(ctx context.Context, current secrets.Secret) error {
	if err := jwtkeys.KeyValidator(k.Options...)(ctx, current.Key(), secrets.Versions{Current: current}); err != nil {
		return fmt.Errorf("%w: the current version %s is not key material a jwtkeys Verifier reads: %w", ErrNotRotatable, current.Version(), err)
	}
	alg, err := k.algorithm(ctx, current)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRotatable, err)
	}
	if err := k.spec(alg); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRotatable, err)
	}
	return nil
}

// algorithm returns Algorithm, or the kind of the current key when it is
// "", found by signing a probe token with it.
func (k *JWTKey) algorithm(ctx context.Context, current secrets.Secret) (KeyAlgorithm, error) {
	if k.Algorithm != "" {
		return k.Algorithm, nil
	}
	var alg string
	err := k.withStore(secrets.Versions{Current: current}, func(st *secrets.Store, name string) error {
		_, hdr, err := k.sign(ctx, st, name)
		alg = hdr.alg
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%w: no Algorithm given, and the current version %s cannot sign to show its kind: %w", ErrKeySpec, current.Version(), err)
	}
	switch {
	case strings.HasPrefix(alg, "HS"):
		return HS256, nil
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return RS256, nil
	case alg == string(ES256):
		return ES256, nil
	case alg == string(Ed25519):
		return Ed25519, nil
	}
	return "", fmt.Errorf("%w: the current key signs %s, a kind this package does not make; set Algorithm", ErrKeySpec, alg)
}

// encoding returns Encoding, or the current value's when it is "".
func (k *JWTKey) encoding(current secrets.Secret) JWTEncoding {
	if k.Encoding != "" {
		return k.Encoding
	}
	if b := strings.TrimSpace(current.Reveal()); strings.HasPrefix(b, "{") {
		return EncodeJWK
	}
	return EncodePEM
}

// Next returns a new key of Algorithm (or of the current key's kind) in
// Encoding (or the current value's).
func (k *JWTKey) Next(ctx context.Context, current secrets.Secret) ([]byte, error) {
	alg, err := k.algorithm(ctx, current)
	if err != nil {
		return nil, err
	}
	if err := k.spec(alg); err != nil {
		return nil, err
	}
	return k.generate(alg, k.encoding(current))
}

// Set has nothing to set downstream. It proves that the key set verifiers
// read during the overlap, pending as current and current as previous,
// accepts a token signed with pending and (when current can sign) one
// signed with current, and that the two kids differ. It returns the kids as
// the notes "kid" and "previous_kid".
func (k *JWTKey) Set(ctx context.Context, current, pending secrets.Secret) (map[string]string, error) {
	newTok, newHdr, err := k.signWith(ctx, pending)
	if err != nil {
		return nil, fmt.Errorf("the new version %s cannot sign: %w", pending.Version(), err)
	}
	notes := map[string]string{noteKID: newHdr.kid}
	oldTok, oldHdr, oldErr := k.signWith(ctx, current)
	if oldErr == nil {
		if oldHdr.kid == newHdr.kid {
			return nil, fmt.Errorf("the new version %s has the kid %q of the current version %s", pending.Version(), newHdr.kid, current.Version())
		}
		notes[notePreviousKID] = oldHdr.kid
	}
	err = k.withStore(secrets.Versions{Current: pending, Previous: current}, func(st *secrets.Store, name string) error {
		v, err := k.verifier(st, name)
		if err != nil {
			return err
		}
		if err := v.Load(ctx); err != nil {
			return fmt.Errorf("the key set of versions %s and %s: %w", pending.Version(), current.Version(), err)
		}
		if _, err := v.Verify(ctx, newTok); err != nil {
			return fmt.Errorf("a token of the new version %s: %w", pending.Version(), err)
		}
		if oldErr == nil {
			if _, err := v.Verify(ctx, oldTok); err != nil {
				return fmt.Errorf("a token of the current version %s, as previous: %w", current.Version(), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return notes, nil
}

// Verify signs a token with pending, with a jwtkeys Signer, and verifies it
// with a jwtkeys Verifier, both over pending alone.
func (k *JWTKey) Verify(ctx context.Context, pending secrets.Secret) error {
	tok, _, err := k.signWith(ctx, pending)
	if err != nil {
		return fmt.Errorf("the new version %s cannot sign: %w", pending.Version(), err)
	}
	return k.withStore(secrets.Versions{Current: pending}, func(st *secrets.Store, name string) error {
		v, err := k.verifier(st, name)
		if err != nil {
			return err
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			return fmt.Errorf("a token of the new version %s: %w", pending.Version(), err)
		}
		return nil
	})
}

// Restore has nothing to undo downstream: consumers read the key from the
// store, and the Agent discards the pending version.
func (k *JWTKey) Restore(context.Context, secrets.Secret, secrets.Secret) error { return nil }

// InUse reports 1 while the verifiers' grace period, counted from the
// promotion the Agent recorded, has not passed, so that the Agent waits for
// it (up to its overlap deadline), and 0 afterwards or when there is no
// previous key. It cannot count the tokens consumers still hold; their
// Verifiers' Stats can.
func (k *JWTKey) InUse(_ context.Context, old, _ secrets.Secret, notes map[string]string) (int, error) {
	if old.IsZero() {
		return 0, nil
	}
	if end, ok := k.graceEnd(notes); ok && k.clock().Now().Before(end) {
		return 1, nil
	}
	return 0, nil
}

// Revoke has nothing to revoke downstream: the Agent removes the previous
// version from the store once Revoke returns (RetirePrevious). It refuses,
// so that the previous key stays, while the verifiers' grace period since
// the promotion has not passed: the rotation is then left unfinished, and
// the next run, after the lease, revokes.
func (k *JWTKey) Revoke(_ context.Context, old, _ secrets.Secret, notes map[string]string) error {
	if old.IsZero() {
		return nil
	}
	if end, ok := k.graceEnd(notes); ok {
		if now := k.clock().Now(); now.Before(end) {
			return fmt.Errorf("the previous key %s is trusted by verifiers until %s, %v from now (grace period %v after the promotion): the overlap is too short; give the Agent WithOverlap(JWTKey.MinOverlap(ttl))",
				old.Version(), end.UTC().Format(time.RFC3339), end.Sub(now).Round(time.Second), k.grace())
		}
	}
	return nil
}

// graceEnd returns when the verifiers' grace period after the promotion
// ends, from the note the Agent records at the promotion.
func (k *JWTKey) graceEnd(notes map[string]string) (time.Time, bool) {
	at, err := time.Parse(time.RFC3339Nano, notes[notePromotedAt])
	if err != nil {
		return time.Time{}, false
	}
	return at.Add(k.grace()), true
}

// header is what a probe token's header says.
type header struct{ alg, kid string }

// signWith signs a probe token with the key in s, with a jwtkeys Signer.
func (k *JWTKey) signWith(ctx context.Context, s secrets.Secret) (string, header, error) {
	var tok string
	var hdr header
	err := k.withStore(secrets.Versions{Current: s}, func(st *secrets.Store, name string) error {
		var err error
		tok, hdr, err = k.sign(ctx, st, name)
		return err
	})
	return tok, hdr, err
}

func (k *JWTKey) sign(ctx context.Context, st *secrets.Store, name string) (string, header, error) {
	s, err := jwtkeys.NewSigner(st, name, k.options()...)
	if err != nil {
		return "", header{}, err
	}
	now := k.clock().Now()
	tok, err := s.Sign(ctx, &jwt.RegisteredClaims{
		Issuer:    probeIssuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(probeLifetime)),
	})
	if err != nil {
		return "", header{}, err
	}
	t, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil {
		return "", header{}, errors.New("the Signer's token does not parse")
	}
	alg, _ := t.Header["alg"].(string)
	kid, _ := t.Header["kid"].(string)
	return tok, header{alg: alg, kid: kid}, nil
}

func (k *JWTKey) verifier(st *secrets.Store, name string) (*jwtkeys.Verifier, error) {
	// A probe checks that the key set signs and verifies, not how long a
	// previous key is trusted: its grace period must not run out between
	// loading the set and verifying with it, however slow the machine.
	return jwtkeys.NewVerifier(st, name, append(k.options(),
		jwtkeys.WithIssuer(probeIssuer), jwtkeys.WithGracePeriod(probeGrace))...)
}

// probeGrace is the grace period of the Verifiers that probe a key set.
const probeGrace = 24 * time.Hour

func (k *JWTKey) options() []jwtkeys.Option {
	return append(append([]jwtkeys.Option(nil), k.Options...),
		jwtkeys.WithGracePeriod(k.grace()), jwtkeys.WithClock(k.clock()))
}

// withStore runs fn with a Store that serves v under a name of its own, and
// closes the Store afterwards. The Store runs on the system clock: it never
// polls within fn, and a fake clock of the caller sees no timer of it.
func (k *JWTKey) withStore(v secrets.Versions, fn func(st *secrets.Store, name string) error) error {
	st, err := secrets.New(fixedSource{v}, secrets.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, "jwt-key")
}

// fixedSource serves the same versions under every key.
type fixedSource struct{ v secrets.Versions }

// Fetch returns the versions, or ErrNotFound when there is no current one.
func (f fixedSource) Fetch(context.Context, string) (secrets.Versions, error) {
	if f.v.Current.IsZero() {
		return secrets.Versions{}, secrets.ErrNotFound
	}
	return f.v, nil
}
