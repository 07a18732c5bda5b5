package jwtkeys

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/secrets"
)

// A Verifier verifies JWTs with the keys held in one secret of a Store: the
// current key, and the previous one for a grace period after a rotation.
//
// A token's string is not a unique id: an ES256, ES384 or ES512 signature
// can be turned into another valid one by anyone who holds the token, which
// gives a second string for the same claims. Key a replay cache or a
// revocation list on the jti claim, never on the token. Claims that name a
// member twice, or a registered claim in another case ({"iss":"a","ISS":"b"},
// which encoding/json would merge into one struct field), are refused with
// ErrDuplicateClaim; see the package documentation.
//
// A Verifier is safe for concurrent use. It starts no goroutine and holds no
// resource of its own, so it needs no Close; it stops working when its Store
// is closed.
type Verifier struct {
	ring      keyring
	cfg       config
	parser    *jwt.Parser
	validator *jwt.Validator

	verifiedCurrent  atomic.Uint64
	verifiedPrevious atomic.Uint64
	refused          [numReasons]atomic.Uint64
}

// NewVerifier returns a Verifier for the key material in the secret key of
// store. key is what store.Get accepts, a "#field" selector included. It does
// no I/O: the secret is read and parsed on the first Verify (or Load).
func NewVerifier(store *secrets.Store, key string, opts ...Option) (*Verifier, error) {
	if store == nil {
		return nil, errors.New("jwtkeys: NewVerifier: nil Store")
	}
	if key == "" {
		return nil, errors.New("jwtkeys: NewVerifier: empty key")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.clock == nil {
		cfg.clock = store.Clock()
	}
	v := &Verifier{cfg: cfg}
	v.ring = keyring{store: store, name: key, cfg: &v.cfg, role: roleVerify, lock: make(chan struct{}, 1)}
	v.parser = jwt.NewParser(jwt.WithStrictDecoding())
	vopts := []jwt.ParserOption{
		jwt.WithTimeFunc(cfg.clock.Now),
		jwt.WithLeeway(cfg.leeway),
		jwt.WithIssuedAt(),
	}
	if !cfg.expOptional {
		vopts = append(vopts, jwt.WithExpirationRequired())
	}
	v.validator = jwt.NewValidator(vopts...)
	return v, nil
}

// Load reads and parses the key material now, and returns the error that
// Verify would report for the keys, or nil. Call it at start-up to fail fast
// on a missing or unusable secret, or from a readiness probe.
func (v *Verifier) Load(ctx context.Context) error {
	ks, err := v.ring.get(ctx)
	if err != nil {
		return &Error{Op: "load", Key: v.ring.name, Reason: ReasonKeyUnavailable, Err: err}
	}
	if ks.err != nil {
		return &Error{Op: "load", Key: v.ring.name, Reason: ReasonKeyUnavailable, Err: ks.err}
	}
	return nil
}

// Verify verifies token and its registered claims, and returns the parsed
// token, whose Claims are a *jwt.RegisteredClaims. It is VerifyClaims with a
// new jwt.RegisteredClaims.
func (v *Verifier) Verify(ctx context.Context, token string) (*jwt.Token, error) {
	return v.verify(ctx, token, &jwt.RegisteredClaims{})
}

// VerifyClaims verifies token and decodes its claims into claims, which must
// be a non-nil pointer (or a jwt.MapClaims). On success it returns the parsed
// token, with Valid set. On failure it returns nil and an *Error; claims may
// then hold unverified data and must not be used.
//
// The checks, in order: the token's size; its form (three base64url segments,
// a JSON header without "crit"); the key (the one named by kid, else the
// current keys and then the previous ones), whose type must accept the
// token's alg; the signature; for the previous key, the grace period; the
// claims' member names (no duplicate, no registered claim in another case:
// ErrDuplicateClaim); then exp (required unless WithExpirationOptional), nbf
// and iat against the clock with the leeway, the claims type's own Validate
// method, the issuer and the audience.
func (v *Verifier) VerifyClaims(ctx context.Context, token string, claims jwt.Claims) (*jwt.Token, error) {
	if !decodable(claims) {
		return nil, &Error{Op: "verify", Key: v.ring.name, Reason: ReasonClaims,
			Err: detail("claims must be a non-nil pointer or a jwt.MapClaims")}
	}
	return v.verify(ctx, token, claims)
}

func decodable(c jwt.Claims) bool {
	if c == nil {
		return false
	}
	if m, ok := c.(jwt.MapClaims); ok {
		return m != nil
	}
	rv := reflect.ValueOf(c)
	return rv.Kind() == reflect.Pointer && !rv.IsNil()
}

func (v *Verifier) verify(ctx context.Context, token string, claims jwt.Claims) (*jwt.Token, error) {
	// Cheap checks first: nothing is decoded from a token that is too long
	// or that has other than three segments.
	if len(token) > v.cfg.maxTokenSize {
		return nil, v.refuse(ReasonTooLarge, nil, nil)
	}
	if strings.Count(token, ".") != 2 {
		return nil, v.refuse(ReasonMalformed, detail("a token has exactly three segments"), nil)
	}
	ks, err := v.ring.get(ctx)
	if err != nil {
		return nil, v.refuse(ReasonKeyUnavailable, err, nil)
	}
	if ks.err != nil {
		return nil, v.refuse(ReasonKeyUnavailable, ks.err, nil)
	}

	t, _, err := v.parser.ParseUnverified(token, claims)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUnverifiable) {
			// The alg header is missing or names no algorithm golang-jwt has.
			return nil, v.refuse(ReasonAlgorithm, nil, nil)
		}
		return nil, v.refuse(ReasonMalformed, detail("a segment is not valid base64url JSON"), nil)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, v.refuse(ReasonMalformed, detail("critical header extensions are not supported"), nil)
	}
	alg, _ := t.Header["alg"].(string)
	method, ok := methods[alg]
	if !ok {
		return nil, v.refuse(ReasonAlgorithm, nil, nil) // "none", among others
	}

	cands := ks.all
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, v.refuse(ReasonMalformed, detail("kid is not a string"), nil)
		}
		if cands = ks.byKID[kid]; len(cands) == 0 {
			return nil, v.refuse(ReasonUnknownKey, nil, nil)
		}
	}

	// Try the candidates in order; the error reported is the first
	// candidate's (the current key's, for a token without kid).
	signed := token[:strings.LastIndexByte(token, '.')]
	var match *key
	firstErr := Reason(0)
	for _, k := range cands {
		if !k.accepts(alg) {
			if firstErr == 0 {
				firstErr = ReasonAlgorithm
			}
			continue
		}
		if method.Verify(signed, t.Signature, k.pub) != nil {
			if firstErr == 0 {
				firstErr = ReasonSignature
			}
			continue
		}
		match = k
		break
	}
	if match == nil {
		return nil, v.refuse(firstErr, nil, nil)
	}
	var now time.Time
	if match.previous {
		// The signature is checked before the grace period, so that only a
		// token really signed with the retired key counts as one.
		now = v.cfg.clock.Now()
		if !now.Before(ks.rot.graceEnds) {
			return nil, v.refuse(ReasonKeyRetired, nil, nil)
		}
	}

	// The claims' member names are checked once the signature is known to
	// be good: a refusal then says that a trusted signer wrote them.
	switch err := checkClaimNames(token[strings.IndexByte(token, '.')+1 : len(signed)]); {
	case err == ErrDuplicateClaim:
		return nil, v.refuse(ReasonClaims, err, nil)
	case err != nil:
		return nil, v.refuse(ReasonMalformed, err, nil)
	}

	if r, cause, jerr := v.checkClaims(claims); r != 0 {
		return nil, v.refuse(r, cause, jerr)
	}

	if match.previous {
		v.verifiedPrevious.Add(1)
		ks.rot.prevUses.Add(1)
		ks.rot.lastPrevUse.Store(now.UnixNano())
	} else {
		v.verifiedCurrent.Add(1)
	}
	t.Valid = true
	return t, nil
}

// checkClaims validates the claims. It returns 0 when they pass.
func (v *Verifier) checkClaims(claims jwt.Claims) (Reason, error, error) {
	if err := v.validator.Validate(claims); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return ReasonExpired, nil, jwt.ErrTokenExpired
		case errors.Is(err, jwt.ErrTokenNotValidYet):
			return ReasonNotYetValid, detail("nbf is in the future"), jwt.ErrTokenNotValidYet
		case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return ReasonNotYetValid, detail("iat is in the future"), jwt.ErrTokenUsedBeforeIssued
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return ReasonClaims, detail("exp is missing"), jwt.ErrTokenRequiredClaimMissing
		case errors.Is(err, jwt.ErrInvalidType):
			return ReasonClaims, detail("a registered claim has the wrong JSON type"), jwt.ErrInvalidType
		}
		return ReasonClaims, detail("the claims' own validation failed"), nil
	}
	if v.cfg.issuer != "" {
		iss, err := claims.GetIssuer()
		if err != nil {
			return ReasonClaims, detail("iss has the wrong JSON type"), jwt.ErrInvalidType
		}
		if iss != v.cfg.issuer {
			return ReasonIssuer, nil, jwt.ErrTokenInvalidIssuer
		}
	}
	if len(v.cfg.audience) > 0 {
		aud, err := claims.GetAudience()
		if err != nil {
			return ReasonClaims, detail("aud has the wrong JSON type"), jwt.ErrInvalidType
		}
		if !anyIn(aud, v.cfg.audience) {
			return ReasonAudience, nil, jwt.ErrTokenInvalidAudience
		}
	}
	return 0, nil, nil
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// refuse counts a refusal and builds its error.
func (v *Verifier) refuse(r Reason, cause, jwtErr error) *Error {
	v.refused[r].Add(1)
	return &Error{Op: "verify", Key: v.ring.name, Reason: r, Err: cause, jwtErr: jwtErr}
}

// Stats is a snapshot of a Verifier's counters and of the rotation in force.
//
// The number to watch during a rotation is PreviousSinceRotation, with
// LastPreviousUse: each is a token that a client still holds, signed with the
// old key. Once it stops growing — no use for longer than your longest token
// lifetime — no live token depends on the old key, and it can be revoked (or
// removed from the secret) before the grace period ends. If tokens still use
// it when GraceEnds is near, they will be refused from then on
// (Refused[ReasonKeyRetired] counts them).
type Stats struct {
	// VerifiedCurrent counts the tokens accepted with a current key.
	VerifiedCurrent uint64
	// VerifiedPrevious counts the tokens accepted with the previous key,
	// over the Verifier's life and every rotation. See PreviousSinceRotation
	// for the rotation in force.
	VerifiedPrevious uint64
	// Refused counts the tokens refused, by reason. Reasons with no refusal
	// are absent.
	Refused map[Reason]uint64

	// CurrentVersion and PreviousVersion are the secret's version ids the
	// keys were last loaded from; PreviousVersion is "" when no previous key
	// is in the key set. Both are "" before the first load.
	CurrentVersion  string
	PreviousVersion string
	// RotationSeen is when the Verifier first loaded the current keys (or
	// the pair's rotated_at, when earlier); GraceEnds is when the previous
	// key stops verifying. Zero before the first load.
	RotationSeen time.Time
	GraceEnds    time.Time
	// PreviousSinceRotation counts the tokens accepted with the previous key
	// since RotationSeen, and LastPreviousUse is when the last one was
	// (zero for none). They tell when the old key can be revoked.
	PreviousSinceRotation uint64
	LastPreviousUse       time.Time
	// KeyError is why the current key material is unusable (every Verify
	// fails with it), and PreviousKeyError why the previous one was left out
	// of the key set; nil when there is nothing to report. Neither holds key
	// material.
	KeyError         error
	PreviousKeyError error
}

// RefusedTotal returns the number of tokens refused for any reason.
func (s Stats) RefusedTotal() uint64 {
	var n uint64
	for _, c := range s.Refused {
		n += c
	}
	return n
}

// Stats returns the Verifier's counters and what it knows of the rotation in
// force. It does no I/O: it reports the keys as last loaded by Verify or Load.
func (v *Verifier) Stats() Stats {
	s := Stats{
		VerifiedCurrent:  v.verifiedCurrent.Load(),
		VerifiedPrevious: v.verifiedPrevious.Load(),
		Refused:          map[Reason]uint64{},
	}
	for r := Reason(1); int(r) < numReasons; r++ {
		if n := v.refused[r].Load(); n > 0 {
			s.Refused[r] = n
		}
	}
	ks := v.ring.set.Load()
	if ks == nil {
		return s
	}
	s.CurrentVersion = ks.cur.Version()
	if len(ks.previous) > 0 {
		s.PreviousVersion = ks.previous[0].version
	}
	if ks.err != nil {
		s.KeyError = ks.err
	}
	if ks.prevErr != nil {
		s.PreviousKeyError = ks.prevErr
	}
	if rot := ks.rot; rot != nil {
		s.RotationSeen, s.GraceEnds = rot.seenAt, rot.graceEnds
		s.PreviousSinceRotation = rot.prevUses.Load()
		if ns := rot.lastPrevUse.Load(); ns != 0 {
			s.LastPreviousUse = time.Unix(0, ns)
		}
	}
	return s
}

// VerifiedWithPrevious returns Stats().PreviousSinceRotation: how many tokens
// signed with the old key were accepted since the Verifier saw the rotation.
// When it stops growing for longer than your longest token lifetime, the old
// key can be revoked.
func (v *Verifier) VerifiedWithPrevious() uint64 {
	if ks := v.ring.set.Load(); ks != nil && ks.rot != nil {
		return ks.rot.prevUses.Load()
	}
	return 0
}
