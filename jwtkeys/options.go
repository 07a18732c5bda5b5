package jwtkeys

import (
	"errors"
	"fmt"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// Defaults and limits of the options.
const (
	// DefaultGracePeriod is how long the previous key keeps verifying after a
	// Verifier first sees a rotation. An hour covers an access token lifetime
	// of up to about 50 minutes plus the time a rotation takes to reach every
	// process: each Store polls on its own TTL (5 minutes by default), so a
	// signer may go on signing with the old key for a few minutes after a
	// verifier has seen the new one. Set it to your longest token lifetime
	// plus twice the Stores' TTL. A window that is too short logs clients out
	// early (they get a 401 and fetch a new token); one that is too long
	// keeps a retired key useful for longer.
	DefaultGracePeriod = time.Hour

	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway WithLeeway accepts.
	MaxLeeway = 5 * time.Minute

	// DefaultMaxTokenSize is the longest token, in bytes, that Verify parses:
	// 8 KiB, the usual limit of a web server's request-header buffer. A
	// longer token is refused with ErrTooLarge before any decoding.
	DefaultMaxTokenSize = 8 << 10

	// MaxKeyMaterialSize is the largest secret value parsed as key material
	// (256 KiB, room for a JWK Set of a hundred RSA keys). A larger value is
	// refused with ErrInvalidKey.
	MaxKeyMaterialSize = 256 << 10
)

// A Format declares how a secret's value encodes its key material. The
// default, FormatAuto, detects it; see the package documentation for the
// rules.
type Format uint8

const (
	// FormatAuto detects the format (the default).
	FormatAuto Format = iota
	// FormatHMAC declares the value to be an HMAC key, used byte for byte:
	// no whitespace is trimmed and no prefix or JSON form is recognised.
	FormatHMAC
	// FormatHMACBase64 declares the value to be an HMAC key in base64
	// (standard or URL alphabet, padded or not; whitespace, such as line
	// breaks, is ignored).
	FormatHMACBase64
	// FormatPEM declares the value to hold PEM-encoded keys.
	FormatPEM
	// FormatJWK declares the value to be a JWK or a JWK Set in JSON.
	FormatJWK
)

// String returns the format's name, such as "pem" or "hmac-base64".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatHMAC:
		return "hmac"
	case FormatHMACBase64:
		return "hmac-base64"
	case FormatPEM:
		return "pem"
	case FormatJWK:
		return "jwk"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// An Option configures a Verifier or a Signer. Options that concern only
// verification (grace period, issuer, audience, leeway, token size) are
// accepted and ignored by a Signer, so one option list can serve both.
type Option func(*config) error

type config struct {
	grace        time.Duration
	clock        secrets.Clock
	algs         []string // nil: every algorithm the key type allows
	issuer       string
	audience     []string
	leeway       time.Duration
	expOptional  bool
	maxTokenSize int
	format       Format
}

func defaultConfig() config {
	return config{
		grace:        DefaultGracePeriod,
		leeway:       DefaultLeeway,
		maxTokenSize: DefaultMaxTokenSize,
	}
}

func newConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return config{}, errors.New("jwtkeys: nil Option")
		}
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

// WithGracePeriod sets how long the previous key keeps verifying after the
// Verifier first sees a rotation (default DefaultGracePeriod, one hour). 0
// refuses the previous key at once. After the period, a token that verifies
// with the previous key is refused with ErrKeyRetired.
func WithGracePeriod(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("jwtkeys: WithGracePeriod(%v): must not be negative", d)
		}
		c.grace = d
		return nil
	}
}

// WithClock sets the clock that times the grace period and checks exp, nbf
// and iat. The default is the Store's own clock (secrets.Store.Clock), so a
// test that gives the Store a fake clock drives both with it.
func WithClock(clk secrets.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return errors.New("jwtkeys: WithClock(nil)")
		}
		c.clock = clk
		return nil
	}
}

// WithAlgorithms narrows the accepted algorithms to those listed, among
// HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256,
// ES384, ES512 and EdDSA. A key still accepts only the algorithms of its own
// type, so the list can only narrow, never widen; a key left with none is
// refused when loaded. A Signer signs with the first listed algorithm its key
// accepts. "none" is refused.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) error {
		if len(algs) == 0 {
			return errors.New("jwtkeys: WithAlgorithms(): no algorithm")
		}
		out := make([]string, 0, len(algs))
		for _, a := range algs {
			if _, ok := methods[a]; !ok {
				return fmt.Errorf("jwtkeys: WithAlgorithms: unsupported algorithm %s", quote(a))
			}
			out = append(out, a)
		}
		c.algs = out
		return nil
	}
}

// WithIssuer requires the iss claim to equal iss. A token without iss is
// refused with ErrIssuer.
func WithIssuer(iss string) Option {
	return func(c *config) error {
		if iss == "" {
			return errors.New("jwtkeys: WithIssuer(\"\")")
		}
		c.issuer = iss
		return nil
	}
}

// WithAudience requires the aud claim to name at least one of aud. A token
// without aud is refused with ErrAudience.
func WithAudience(aud ...string) Option {
	return func(c *config) error {
		if len(aud) == 0 {
			return errors.New("jwtkeys: WithAudience(): no audience")
		}
		for _, a := range aud {
			if a == "" {
				return errors.New("jwtkeys: WithAudience: empty audience")
			}
		}
		c.audience = append([]string(nil), aud...)
		return nil
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (default
// DefaultLeeway, 30 seconds; at most MaxLeeway).
func WithLeeway(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("jwtkeys: WithLeeway(%v): must be in [0, %v]", d, MaxLeeway)
		}
		c.leeway = d
		return nil
	}
}

// WithExpirationOptional lets tokens without an exp claim verify, and lets a
// Signer sign claims without one. By default exp is required on both sides: a
// token that never expires outlives every rotation.
func WithExpirationOptional() Option {
	return func(c *config) error {
		c.expOptional = true
		return nil
	}
}

// WithMaxTokenSize sets the longest token, in bytes, that Verify parses
// (default DefaultMaxTokenSize, 8 KiB). Longer tokens are refused with
// ErrTooLarge before any decoding.
func WithMaxTokenSize(n int) Option {
	return func(c *config) error {
		if n < 16 {
			return fmt.Errorf("jwtkeys: WithMaxTokenSize(%d): must be at least 16", n)
		}
		c.maxTokenSize = n
		return nil
	}
}

// WithKeyFormat declares the format of the secret's value instead of letting
// it be detected (FormatAuto).
func WithKeyFormat(f Format) Option {
	return func(c *config) error {
		if f > FormatJWK {
			return fmt.Errorf("jwtkeys: WithKeyFormat(%v): unknown format", f)
		}
		c.format = f
		return nil
	}
}
