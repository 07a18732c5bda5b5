package rotate

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The character classes of a PasswordPolicy.
const (
	Lower   = "abcdefghijklmnopqrstuvwxyz"
	Upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Digits  = "0123456789"
	Symbols = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
)

// DefaultExclude holds the characters a password leaves out by default:
// those that need quoting or escaping in a connection string (URL or
// key=value form), a shell or JSON: quote marks, the backslash, the space,
// and the backtick.
const DefaultExclude = "\"'\\ `"

// A PasswordPolicy describes the passwords a Password generator makes. The
// zero policy means: 32 characters from the four classes, at least one of
// each, leaving out DefaultExclude.
type PasswordPolicy struct {
	// Length is the number of characters; 0 means 32. At least 16.
	Length int
	// Classes are the character sets to draw from, each of which the
	// password holds at least once; nil means Lower, Upper, Digits and
	// Symbols. Only printable ASCII (space to tilde) is allowed: a client
	// normalizes other characters before it logs in (PostgreSQL's SASLprep),
	// so a verifier computed from the raw password would never match.
	Classes []string
	// Exclude lists characters never used (characters a connection string
	// or a downstream's parser cannot take). "" means DefaultExclude; to
	// exclude nothing, pass a character no class holds, such as "\x00".
	Exclude string
}

// Password returns a new password following p, drawn with crypto/rand, each
// character uniformly from the union of the classes minus the excluded ones.
// It fails when the policy cannot be met (too short, a class left empty by
// the exclusions).
func (p PasswordPolicy) Password() (string, error) {
	n := p.Length
	if n == 0 {
		n = 32
	}
	if n < 16 {
		return "", fmt.Errorf("rotate: password length %d: at least 16", n)
	}
	classes := p.Classes
	if classes == nil {
		classes = []string{Lower, Upper, Digits, Symbols}
	}
	exclude := p.Exclude
	if exclude == "" {
		exclude = DefaultExclude
	}
	if len(classes) > n {
		return "", fmt.Errorf("rotate: password length %d is shorter than its %d classes", n, len(classes))
	}
	var sets []string
	seen := map[rune]bool{}
	var all []rune
	for i, c := range classes {
		var kept []rune
		for _, r := range c {
			if r < ' ' || r > '~' {
				return "", fmt.Errorf("rotate: password class %d holds a character outside printable ASCII (U+%04X): logins normalize such characters, so the password would not match what was set", i, r)
			}
			if !strings.ContainsRune(exclude, r) {
				kept = append(kept, r)
				if !seen[r] {
					seen[r] = true
					all = append(all, r)
				}
			}
		}
		if len(kept) == 0 {
			return "", fmt.Errorf("rotate: password class %d is empty once the excluded characters are left out", i)
		}
		sets = append(sets, string(kept))
	}
	// Draw every character from the union and start again until each class
	// is present: uniform over the passwords the policy allows. With the
	// defaults a draw misses a class about once in 500.
	out := make([]rune, n)
	for attempt := 0; attempt < 1000; attempt++ {
		for i := range out {
			out[i] = all[randIndex(len(all))]
		}
		if hasAll(out, sets) {
			return string(out), nil
		}
	}
	return "", errors.New("rotate: the password policy is too tight to be met")
}

func hasAll(pw []rune, sets []string) bool {
	for _, s := range sets {
		found := false
		for _, r := range pw {
			if strings.ContainsRune(s, r) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// randIndex returns a uniform random integer in [0, n) from crypto/rand.
func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("rotate: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return int(v.Int64())
}

// HMACKey returns n random bytes from crypto/rand for an HMAC key; n must be
// at least 32 (HS256 needs a key as long as its hash).
func HMACKey(n int) ([]byte, error) {
	if n < 32 {
		return nil, fmt.Errorf("rotate: HMAC key of %d bytes: at least 32", n)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b, nil
}

// A KeyAlgorithm names the kind of signing key KeyPair makes.
type KeyAlgorithm string

// The algorithms KeyPair supports.
const (
	Ed25519 KeyAlgorithm = "EdDSA"
	ES256   KeyAlgorithm = "ES256" // ECDSA on P-256
	RS256   KeyAlgorithm = "RS256" // RSA, 2048 bits or more
)

// A SigningKey is a new key pair: the private key as PKCS #8 PEM, the public
// key as PKIX PEM, and its key id.
type SigningKey struct {
	Algorithm KeyAlgorithm
	// KID is the key id: the base64url SHA-256 of the public key's DER,
	// cut to 16 characters; the same key always gets the same id.
	KID        string
	PrivatePEM []byte
	PublicPEM  []byte
}

// KeyPair returns a new key pair for alg, drawn with crypto/rand. rsaBits
// is used for RS256 only and must be at least 2048 (0 means 2048).
func KeyPair(alg KeyAlgorithm, rsaBits int) (SigningKey, error) {
	var priv any
	var pub any
	switch alg {
	case Ed25519:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return SigningKey{}, err
		}
		priv, pub = sk, pk
	case ES256:
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return SigningKey{}, err
		}
		priv, pub = sk, &sk.PublicKey
	case RS256:
		if rsaBits == 0 {
			rsaBits = 2048
		}
		if rsaBits < 2048 {
			return SigningKey{}, fmt.Errorf("rotate: RSA key of %d bits: at least 2048", rsaBits)
		}
		sk, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return SigningKey{}, err
		}
		priv, pub = sk, &sk.PublicKey
	default:
		return SigningKey{}, fmt.Errorf("rotate: key algorithm %q: want EdDSA, ES256 or RS256", alg)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return SigningKey{}, err
	}
	sum := sha256.Sum256(pubDER)
	return SigningKey{
		Algorithm:  alg,
		KID:        base64.RawURLEncoding.EncodeToString(sum[:])[:16],
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		PublicPEM:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
	}, nil
}
