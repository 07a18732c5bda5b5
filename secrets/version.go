package secrets

import (
	"crypto/sha256"
	"encoding/hex"
)

// contentDomain prefixes the value in ContentVersion, so that a version id is
// not the SHA-256 of the value that precomputed tables of common passwords
// hold.
const contentDomain = "rotor content version\x00"

// ContentVersion returns a version id for a value, for sources whose backend
// keeps none (files, the environment): the first 16 hex digits (64 bits) of
// SHA-256(domain || value).
//
// Equal values get equal ids in every process, which matters: replicas and
// restarts must agree on ids, since a JWT's kid may be one. Sixty-four bits
// tell apart the values one secret takes over time with a chance of
// accidental collision of about n²/2⁶⁵, nil in practice; a collision made on
// purpose takes about 2³² work by someone who can already write the value,
// and would only make one rotation look like none until the next.
//
// Version ids appear in logs, statuses and change notices. An id does not
// reveal its value, but a weak value (a short password) can be found from its
// id by trying candidates, as from any unsalted digest: keep such sources to
// high-entropy credentials, or treat their logs as sensitive.
func ContentVersion(value []byte) string {
	h := sha256.New()
	h.Write([]byte(contentDomain))
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
