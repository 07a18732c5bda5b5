package jwtkeys

// Key returns the key of the Store that the Verifier reads its key material
// from, as passed to NewVerifier. It names the Verifier in metrics and logs;
// it is a name, never key material.
func (v *Verifier) Key() string { return v.ring.name }

// Verification key versions, as VerificationCounts reports them.
const (
	KeyVersionCurrent  = "current"
	KeyVersionPrevious = "previous"
)

// VerificationCounts calls f once for each of the Verifier's counters, with
// its count over the Verifier's life: the tokens accepted with the current
// key (keyVersion KeyVersionCurrent, reason ""), those accepted with the
// previous key (KeyVersionPrevious, ""), and for each Reason with at least
// one refusal, the tokens refused for it (keyVersion "", reason the
// Reason's String). The two counts of accepted tokens are always reported,
// zero or not.
//
// It reads atomic counters, does no I/O and takes no lock, so a metrics
// callback may call it at any rate. Its arguments are plain strings so that
// an adapter (such as secrets/otelmetrics) can take any value with this
// method without importing this package, and so without golang-jwt for the
// users who verify no token. The counts are read one by one, not as one
// snapshot: a verification that ends meanwhile may be counted in one and
// not yet in another.
func (v *Verifier) VerificationCounts(f func(keyVersion, reason string, n uint64)) {
	f(KeyVersionCurrent, "", v.verifiedCurrent.Load())
	f(KeyVersionPrevious, "", v.verifiedPrevious.Load())
	for r := Reason(1); int(r) < numReasons; r++ {
		if n := v.refused[r].Load(); n > 0 {
			f("", r.String(), n)
		}
	}
}
