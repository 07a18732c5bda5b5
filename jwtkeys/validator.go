package jwtkeys

import (
	"context"

	"github.com/rotorhq/rotor/secrets"
)

// KeyValidator returns a secrets.Validator that refuses a candidate version
// whose current key material this package cannot use (malformed, of an
// unsupported type, weak, or left with no algorithm by WithAlgorithms), so
// that a broken rotation never replaces working keys: the Store keeps serving
// the old version and records the rejection in its Status. Only WithKeyFormat
// and WithAlgorithms matter to it; pass it the options the Verifier or Signer
// gets. Options it cannot accept make it refuse every candidate with their
// error (NewVerifier and NewSigner report the same error at once).
//
// Register it for the key the Verifier or Signer reads:
//
//	store, err := secrets.New(src, secrets.WithValidator(jwtkeys.KeyValidator(), "jwt-signing-key"))
//
// As with every validator, it does not run on a key's first load: call
// Verifier.Load or Signer.Load at start-up for that.
func KeyValidator(opts ...Option) secrets.Validator {
	cfg, cfgErr := newConfig(opts)
	o := parseOpts{format: cfg.format, algs: cfg.algs}
	return func(ctx context.Context, key string, candidate secrets.Versions) error {
		if cfgErr != nil {
			return cfgErr
		}
		if candidate.Current.IsZero() {
			return &Error{Op: "validate", Key: key, Reason: ReasonKeyUnavailable, Err: invalidKey("no current version")}
		}
		if _, err := parseMaterial(candidate.Current.Bytes(), o); err != nil {
			c := *asKeyError(err)
			c.version = candidate.Current.Version()
			return &Error{Op: "validate", Key: key, Reason: ReasonKeyUnavailable, Err: &c}
		}
		return nil
	}
}
