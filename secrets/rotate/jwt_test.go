package rotate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

const (
	jwtKeyName = "jwt-signing-key"
	jwtTTL     = 10 * time.Second // the consumers' TTL given to the agent (newAgent)
	jwtGrace   = 5 * time.Minute  // the consumers' Verifiers' grace period
)

// jwtWorld is a signing key in a memory source and its consumers: a Store,
// a jwtkeys Signer and a jwtkeys Verifier over it.
//
// The Store runs on a clock of its own that never moves, so that its polls
// never fire and add no timer that runClocked would advance the agent's
// clock to; the test makes it read the source with Refresh. The Signer and
// the Verifier take their time (token times, the grace period) from the
// agent's clock.
type jwtWorld struct {
	src      *memory.Source
	clk      *fakeclock.Clock
	store    *secrets.Store
	signer   *jwtkeys.Signer
	verifier *jwtkeys.Verifier
	key      *rotate.JWTKey
}

func newJWTWorld(t *testing.T, key *rotate.JWTKey) *jwtWorld {
	t.Helper()
	clk := fakeclock.New(t0)
	key.Clock, key.GracePeriod = clk, jwtGrace
	first, err := key.Generate()
	if err != nil {
		t.Fatal(err)
	}
	w := &jwtWorld{src: memory.New(), clk: clk, key: key}
	w.src.Set(jwtKeyName, string(first))
	w.store, err = secrets.New(w.src, secrets.WithClock(fakeclock.New(t0)), secrets.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.store.Close() })
	w.signer, err = jwtkeys.NewSigner(w.store, jwtKeyName, jwtkeys.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	w.verifier = w.newVerifier(t)
	return w
}

// newVerifier returns a Verifier as a consumer process started now would
// build it.
func (w *jwtWorld) newVerifier(t *testing.T) *jwtkeys.Verifier {
	v, err := jwtkeys.NewVerifier(w.store, jwtKeyName, jwtkeys.WithClock(w.clk), jwtkeys.WithGracePeriod(jwtGrace))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign signs a token valid for two hours with the Signer and returns it
// with its kid. It may run on the agent's goroutine: it reports with
// t.Errorf.
func (w *jwtWorld) sign(t *testing.T, ctx context.Context) (string, string) {
	tok, err := w.signer.Sign(ctx, &jwt.RegisteredClaims{Subject: "client",
		IssuedAt: jwt.NewNumericDate(w.clk.Now()), ExpiresAt: jwt.NewNumericDate(w.clk.Now().Add(2 * time.Hour))})
	if err != nil {
		t.Errorf("sign: %v", err)
		return "", ""
	}
	return tok, kidOf(t, tok)
}

func kidOf(t *testing.T, tok string) string {
	p, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil {
		t.Errorf("parse: %v", err)
		return ""
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

func (w *jwtWorld) refresh(t *testing.T, ctx context.Context) secrets.Versions {
	if err := w.store.Refresh(ctx, jwtKeyName); err != nil {
		t.Errorf("refresh: %v", err)
	}
	v, err := w.store.Versions(ctx, jwtKeyName)
	if err != nil {
		t.Errorf("versions: %v", err)
	}
	return v
}

// wantRefused checks that err is a *jwtkeys.Error of class want.
func wantRefused(t *testing.T, what string, err, want error) {
	t.Helper()
	var je *jwtkeys.Error
	if !errors.As(err, &je) || !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want a *jwtkeys.Error matching %v", what, err, want)
	}
}

// TestJWTRotationEndToEnd rotates a signing key of every kind and encoding
// through the agent, with a real jwtkeys Signer and Verifier reading the
// store, and checks what consumers see at every step: tokens of the old key
// verify until the verifiers' grace period (and, for a Verifier started
// after the rotation, until the revoke), the Signer switches to the new kid
// at the promotion, and after the revoke the old key is refused everywhere.
func TestJWTRotationEndToEnd(t *testing.T) {
	for _, alg := range []rotate.KeyAlgorithm{rotate.HS256, rotate.Ed25519, rotate.ES256, rotate.RS256} {
		for _, enc := range []rotate.JWTEncoding{rotate.EncodeJWK, rotate.EncodePEM} {
			t.Run(fmt.Sprintf("%s/%s", alg, enc), func(t *testing.T) {
				ctx := ctxT(t)
				w := newJWTWorld(t, &rotate.JWTKey{Algorithm: alg, Encoding: enc})
				before := w.refresh(t, ctx)
				oldTok, oldKID := w.sign(t, ctx)
				if oldKID == "" {
					t.Fatal("the Signer's token has no kid")
				}
				if _, err := w.verifier.Verify(ctx, oldTok); err != nil {
					t.Fatal(err)
				}

				var promotedAt, revokedAt time.Time
				var newKID string
				hook := func(_ string, step secrets.RotationStep, recorded bool) error {
					at := fmt.Sprintf("%s/recorded=%v", step, recorded)
					v := w.refresh(t, ctx)
					tok, kid := w.sign(t, ctx)
					if _, err := w.verifier.Verify(ctx, tok); err != nil {
						t.Errorf("%s: a token the Signer signs now: %v", at, err)
					}
					_, oldErr := w.verifier.Verify(ctx, oldTok)
					_, lateErr := w.newVerifier(t).Verify(ctx, oldTok)
					switch step {
					case secrets.StepStarted, secrets.StepStaged, secrets.StepSet, secrets.StepVerified:
						if kid != oldKID || v.Current.Version() != before.Current.Version() {
							t.Errorf("%s: the Signer signs with kid %q, want the old %q", at, kid, oldKID)
						}
						if oldErr != nil {
							t.Errorf("%s: a token of the old key: %v", at, oldErr)
						}
					case secrets.StepPromoted:
						if promotedAt.IsZero() {
							promotedAt = w.clk.Now()
						}
						newKID = kid
						if kid == oldKID || kid == "" {
							t.Errorf("%s: the Signer signs with kid %q, the old one", at, kid)
						}
						if oldErr != nil {
							t.Errorf("%s: a token of the old key, within the grace period: %v", at, oldErr)
						}
						// The key set holds the current and the previous key.
						st := w.verifier.Stats()
						if st.CurrentVersion != v.Current.Version() || st.PreviousVersion != before.Current.Version() {
							t.Errorf("%s: the Verifier's key set holds versions %q and %q, want %q and %q", at,
								st.CurrentVersion, st.PreviousVersion, v.Current.Version(), before.Current.Version())
						}
					case secrets.StepOverlapped:
						if kid != newKID {
							t.Errorf("%s: the Signer signs with kid %q, want %q", at, kid, newKID)
						}
						// The Verifier that saw the promotion has ended its
						// own grace period; one started since opened a new
						// one, and the store still holds the old key.
						wantRefused(t, at+": the old key, after the grace period", oldErr, jwtkeys.ErrKeyRetired)
						if lateErr != nil {
							t.Errorf("%s: a Verifier started after the rotation, before the revoke: %v", at, lateErr)
						}
						if v.Previous.Version() != before.Current.Version() {
							t.Errorf("%s: the store no longer serves the old key as previous", at)
						}
					case secrets.StepDone:
						if revokedAt.IsZero() {
							revokedAt = w.clk.Now()
						}
						if !v.Previous.IsZero() {
							t.Errorf("%s: the store still serves a previous version %s", at, v.Previous.Version())
						}
						wantRefused(t, at+": the old key, after the revoke", oldErr, jwtkeys.ErrUnknownKey)
						wantRefused(t, at+": the old key, after the revoke, a new Verifier", lateErr, jwtkeys.ErrUnknownKey)
					default:
						t.Errorf("unexpected step %s", at)
					}
					return nil
				}
				a := newAgent(t, w.src, w.key, w.clk, "a", rotate.WithOverlap(w.key.MinOverlap(jwtTTL)), rotate.WithStepHook(hook))
				rep, err := runClocked(t, w.clk, func() (rotate.Report, error) { return a.Rotate(ctx, jwtKeyName) })
				if err != nil {
					t.Fatal(err)
				}
				if got, want := revokedAt.Sub(promotedAt), jwtGrace+3*jwtTTL; got < want {
					t.Errorf("the old key was removed %v after the promotion, want at least %v", got, want)
				}
				v, _ := w.src.Fetch(ctx, jwtKeyName)
				if v.Current.Version() != rep.To || !v.Previous.IsZero() || !v.Pending.IsZero() {
					t.Fatalf("store: current %s previous %q pending %q, report %+v", v.Current.Version(), v.Previous.Version(), v.Pending.Version(), rep)
				}
				if strings.HasPrefix(v.Current.Reveal(), "{") != (enc == rotate.EncodeJWK) {
					t.Errorf("the new key is not written as %s", enc)
				}
				rec, _ := w.src.LoadRotation(ctx, jwtKeyName)
				if rec.Step != secrets.StepDone || rec.Notes["kid"] != newKID || rec.Notes["previous_kid"] != oldKID {
					t.Errorf("record: step %s notes %v; want done, kid %q, previous_kid %q", rec.Step, rec.Notes, newKID, oldKID)
				}
				// Nothing of either key is in the record.
				b, _ := json.Marshal(rec)
				for _, s := range []secrets.Secret{before.Current, v.Current} {
					if strings.Contains(string(b), s.Reveal()) {
						t.Error("the rotation record holds key material")
					}
				}
			})
		}
	}
}

// failingVerify is a JWTKey whose verify step fails, as a new key that
// consumers could not read would.
type failingVerify struct{ *rotate.JWTKey }

var errProbe = errors.New("probe token refused")

func (failingVerify) Verify(context.Context, secrets.Secret) error { return errProbe }

// TestJWTCrashMatrix stops the agent around every step of a signing key's
// rotation (after the step's effect and before its record, and after its
// record), checks that consumers keep signing and verifying, and has
// another agent finish or undo it.
func TestJWTCrashMatrix(t *testing.T) {
	steps := []secrets.RotationStep{secrets.StepStarted, secrets.StepStaged, secrets.StepSet, secrets.StepVerified,
		secrets.StepPromoted, secrets.StepOverlapped, secrets.StepDone, secrets.StepRollingBack, secrets.StepRolledBack}
	for _, failVerify := range []bool{false, true} {
		for _, step := range steps {
			for _, recorded := range []bool{false, true} {
				t.Run(fmt.Sprintf("verifyFails=%v/%s/recorded=%v", failVerify, step, recorded), func(t *testing.T) {
					ctx := ctxT(t)
					w := newJWTWorld(t, &rotate.JWTKey{Algorithm: rotate.Ed25519})
					initial := w.refresh(t, ctx).Current
					oldTok, oldKID := w.sign(t, ctx)
					var target rotate.Target = w.key
					if failVerify {
						target = failingVerify{w.key}
					}
					crashed := false
					hook := func(_ string, s secrets.RotationStep, rec bool) error {
						if s == step && rec == recorded && !crashed {
							crashed = true
							return errors.New("injected crash")
						}
						return nil
					}
					overlap := rotate.WithOverlap(w.key.MinOverlap(jwtTTL))
					a := newAgent(t, w.src, target, w.clk, "a", overlap, rotate.WithStepHook(hook))
					_, err := runClocked(t, w.clk, func() (rotate.Report, error) { return a.Rotate(ctx, jwtKeyName) })
					if !crashed {
						if failVerify != errors.Is(err, rotate.ErrRolledBack) {
							t.Fatalf("no crash at this point, and err = %v", err)
						}
						t.Skip("the rotation does not pass this point")
					}
					if !errors.Is(err, rotate.ErrCrashed) {
						t.Fatalf("err = %v, want ErrCrashed", err)
					}

					// Consumers keep working: what the Signer signs now
					// verifies, and so does the old token until the grace
					// period after the promotion has passed.
					w.refresh(t, ctx)
					tok, _ := w.sign(t, ctx)
					if _, err := w.verifier.Verify(ctx, tok); err != nil {
						t.Fatalf("after the crash, a token the Signer signs: %v", err)
					}
					if step != secrets.StepOverlapped && step != secrets.StepDone {
						if _, err := w.verifier.Verify(ctx, oldTok); err != nil {
							t.Fatalf("after the crash, a token of the old key: %v", err)
						}
					}

					// Another agent, within the lease, keeps out; after it,
					// finishes or undoes the rotation.
					b := newAgent(t, w.src, target, w.clk, "b", overlap)
					if !(step.Terminal() && recorded) {
						keptOut(t, w.clk, w.src, jwtKeyName, func(ctx context.Context) (rotate.Report, error) { return b.Rotate(ctx, jwtKeyName) })
					}
					w.clk.Advance(2 * time.Minute)
					_, err = runClocked(t, w.clk, func() (rotate.Report, error) { return b.Rotate(ctx, jwtKeyName) })
					if failVerify != errors.Is(err, rotate.ErrRolledBack) || !failVerify && err != nil {
						t.Fatalf("resumed: err = %v (verify fails: %v)", err, failVerify)
					}

					v, _ := w.src.Fetch(ctx, jwtKeyName)
					rec, _ := w.src.LoadRotation(ctx, jwtKeyName)
					if !v.Pending.IsZero() || !rec.Step.Terminal() {
						t.Fatalf("left behind: pending %q, record at %q", v.Pending.Version(), rec.Step)
					}
					w.refresh(t, ctx)
					tok, kid := w.sign(t, ctx)
					if _, err := w.verifier.Verify(ctx, tok); err != nil {
						t.Fatalf("after the resume, a token the Signer signs: %v", err)
					}
					_, oldErr := w.newVerifier(t).Verify(ctx, oldTok)
					if failVerify {
						if v.Current.Version() != initial.Version() || kid != oldKID {
							t.Fatal("a rotation whose verify failed changed the signing key")
						}
						if oldErr != nil {
							t.Fatalf("after the rollback, a token of the key still current: %v", oldErr)
						}
						return
					}
					if v.Current.Version() == initial.Version() || kid == oldKID {
						t.Fatal("the rotation did not finish")
					}
					if !v.Previous.IsZero() {
						t.Fatal("the old key was not removed")
					}
					wantRefused(t, "a token of the removed key", oldErr, jwtkeys.ErrUnknownKey)
				})
			}
		}
	}
}

// TestJWTRevokeWaitsForTheGracePeriod: an agent given an overlap shorter
// than the verifiers' grace period does not remove the previous key before
// the grace period has passed. It waits for it, when its deadline allows;
// otherwise it stops unfinished, with the key still there, and a later run
// removes it.
func TestJWTRevokeWaitsForTheGracePeriod(t *testing.T) {
	promoted := func(w *jwtWorld, at *time.Time) rotate.Option {
		return rotate.WithNotify(func(_ context.Context, e rotate.Event) {
			if e.Kind == rotate.EventPromoted {
				*at = w.clk.Now()
			}
		})
	}
	t.Run("deadline allows", func(t *testing.T) {
		ctx := ctxT(t)
		w := newJWTWorld(t, &rotate.JWTKey{Algorithm: rotate.HS256})
		var at time.Time
		a := newAgent(t, w.src, w.key, w.clk, "a", rotate.WithOverlapDeadline(time.Hour), promoted(w, &at))
		if _, err := runClocked(t, w.clk, func() (rotate.Report, error) { return a.Rotate(ctx, jwtKeyName) }); err != nil {
			t.Fatal(err)
		}
		if got := w.clk.Now().Sub(at); got < jwtGrace {
			t.Fatalf("the previous key was removed %v after the promotion, before the grace period of %v", got, jwtGrace)
		}
	})
	t.Run("deadline too short", func(t *testing.T) {
		ctx := ctxT(t)
		w := newJWTWorld(t, &rotate.JWTKey{Algorithm: rotate.HS256})
		var at time.Time
		a := newAgent(t, w.src, noMinOverlap{JWTKey: w.key}, w.clk, "a", promoted(w, &at)) // overlap 30s, deadline 2m
		_, err := runClocked(t, w.clk, func() (rotate.Report, error) { return a.Rotate(ctx, jwtKeyName) })
		if !errors.Is(err, rotate.ErrUnfinished) || !strings.Contains(err.Error(), "grace period") {
			t.Fatalf("err = %v, want ErrUnfinished naming the grace period", err)
		}
		v, _ := w.src.Fetch(ctx, jwtKeyName)
		if v.Previous.IsZero() {
			t.Fatal("the previous key was removed before the grace period had passed")
		}
		w.clk.Advance(at.Add(jwtGrace).Sub(w.clk.Now()))
		b := newAgent(t, w.src, w.key, w.clk, "b")
		rep, err := runClocked(t, w.clk, func() (rotate.Report, error) { return b.Rotate(ctx, jwtKeyName) })
		if err != nil || !rep.Resumed {
			t.Fatalf("resumed after the grace period: %+v, %v", rep, err)
		}
		if v, _ := w.src.Fetch(ctx, jwtKeyName); !v.Previous.IsZero() {
			t.Fatal("the previous key is still there")
		}
	})
}

// noMinOverlap is a JWTKey that does not ask the Agent for its longer
// overlap (its MinOverlap is hidden by the field), so that an Agent runs
// with an overlap shorter than the verifiers' grace period, as one given
// another Target's overlap would.
type noMinOverlap struct {
	*rotate.JWTKey
	MinOverlap struct{} // hides (*rotate.JWTKey).MinOverlap: not an OverlapMinimizer
}

// TestJWTBadInput: a stored value that is not key material jwtkeys reads,
// or a key the JWTKey cannot or must not make, fails with a typed error
// before anything is written, and no error holds the value.
func TestJWTBadInput(t *testing.T) {
	ecPEM := func(curve elliptic.Curve) string {
		sk, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(sk)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	publicOnly := func() string {
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&sk.PublicKey)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	goodHMAC := "base64:" + strings.Repeat("QUJD", 16)
	cases := []struct {
		name   string
		stored string
		key    rotate.JWTKey
		want   error
	}{
		{"short HMAC secret", "hunter2-but-short", rotate.JWTKey{Algorithm: rotate.HS256}, jwtkeys.ErrInvalidKey},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n", rotate.JWTKey{Algorithm: rotate.ES256}, jwtkeys.ErrInvalidKey},
		{"JSON that is no key", `{"password":"not-a-key-but-a-secret-all-the-same"}`, rotate.JWTKey{}, jwtkeys.ErrInvalidKey},
		{"RSA of 1024 bits requested", goodHMAC, rotate.JWTKey{Algorithm: rotate.RS256, RSABits: 1024}, rotate.ErrKeySpec},
		{"HMAC of 16 bytes requested", goodHMAC, rotate.JWTKey{Algorithm: rotate.HS256, HMACBytes: 16}, rotate.ErrKeySpec},
		{"unknown algorithm", goodHMAC, rotate.JWTKey{Algorithm: "ES384"}, rotate.ErrKeySpec},
		{"unknown encoding", goodHMAC, rotate.JWTKey{Algorithm: rotate.HS256, Encoding: "der"}, rotate.ErrKeySpec},
		{"kind of a public key", publicOnly(), rotate.JWTKey{}, rotate.ErrKeySpec},
		{"kind not made", ecPEM(elliptic.P384()), rotate.JWTKey{}, rotate.ErrKeySpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxT(t)
			src := memory.New()
			src.Set(jwtKeyName, c.stored)
			clk := fakeclock.New(t0)
			key := c.key
			key.Clock = clk
			a := newAgent(t, src, &key, clk, "a")
			_, err := a.Rotate(ctx, jwtKeyName)
			if !errors.Is(err, rotate.ErrNotRotatable) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want ErrNotRotatable and %v", err, c.want)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(c.stored)) || strings.Contains(err.Error(), "not-a-key") {
				t.Fatal("the error holds the stored value")
			}
			rec, _ := src.LoadRotation(ctx, jwtKeyName)
			v, _ := src.Fetch(ctx, jwtKeyName)
			if rec.Revision != "" || !v.Pending.IsZero() || v.Current.Reveal() != c.stored {
				t.Fatal("something was written")
			}
		})
	}
	t.Run("Generate", func(t *testing.T) {
		for _, k := range []rotate.JWTKey{{Algorithm: rotate.RS256, RSABits: 1024}, {Algorithm: rotate.HS256, HMACBytes: 31}, {}, {Algorithm: "none"}} {
			if _, err := k.Generate(); !errors.Is(err, rotate.ErrKeySpec) {
				t.Errorf("%+v: err = %v, want ErrKeySpec", k, err)
			}
		}
	})
}

// TestJWTGenerate: every kind and encoding of new key is read by jwtkeys,
// signs with the expected algorithm and a kid, and two keys differ.
func TestJWTGenerate(t *testing.T) {
	for _, alg := range []rotate.KeyAlgorithm{rotate.HS256, rotate.Ed25519, rotate.ES256, rotate.RS256} {
		for _, enc := range []rotate.JWTEncoding{rotate.EncodeJWK, rotate.EncodePEM} {
			t.Run(fmt.Sprintf("%s/%s", alg, enc), func(t *testing.T) {
				ctx := ctxT(t)
				k := rotate.JWTKey{Algorithm: alg, Encoding: enc}
				var kids []string
				for i := range 2 {
					val, err := k.Generate()
					if err != nil {
						t.Fatal(err)
					}
					src := memory.New()
					src.Set(jwtKeyName, string(val))
					st, err := secrets.New(src, secrets.WithLogger(quiet()))
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					s, _ := jwtkeys.NewSigner(st, jwtKeyName)
					tok, err := s.Sign(ctx, &jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))})
					if err != nil {
						t.Fatal(err)
					}
					p, _, _ := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
					if p.Header["alg"] != string(alg) {
						t.Fatalf("signs %v, want %s", p.Header["alg"], alg)
					}
					kid, _ := p.Header["kid"].(string)
					if enc == rotate.EncodeJWK {
						var j struct{ Kid, Alg, Use string }
						if err := json.Unmarshal(val, &j); err != nil || j.Kid == "" || j.Kid != kid || j.Alg != string(alg) || j.Use != "sig" {
							t.Fatalf("JWK members kid %q alg %q use %q (err %v); token kid %q", j.Kid, j.Alg, j.Use, err, kid)
						}
					}
					kids = append(kids, kid)
					if i == 1 && enc == rotate.EncodeJWK && kids[0] == kids[1] {
						t.Fatal("two new keys have one kid")
					}
				}
			})
		}
	}
	t.Run("RSA bits", func(t *testing.T) {
		if testing.Short() {
			t.Skip("an RSA-3072 key takes long to make")
		}
		val, err := (&rotate.JWTKey{Algorithm: rotate.RS256, RSABits: 3072, Encoding: rotate.EncodePEM}).Generate()
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(val)
		sk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if n := sk.(*rsa.PrivateKey).N.BitLen(); n != 3072 {
			t.Fatalf("modulus of %d bits", n)
		}
	})
}

// TestJWTKeepsKindAndEncoding: with no Algorithm and no Encoding, the new key
// is of the current key's kind and written as the current one is.
func TestJWTKeepsKindAndEncoding(t *testing.T) {
	ctx := ctxT(t)
	first, err := (&rotate.JWTKey{Algorithm: rotate.ES256, Encoding: rotate.EncodePEM}).Generate()
	if err != nil {
		t.Fatal(err)
	}
	cur := secrets.NewSecret(jwtKeyName, "1", first)
	k := &rotate.JWTKey{}
	if err := k.Check(ctx, cur); err != nil {
		t.Fatal(err)
	}
	next, err := k.Next(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(next)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("the new key is not PEM")
	}
	sk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if ec, ok := sk.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("the new key is a %T, want an ECDSA P-256 key", sk)
	}
}

func TestJWTMinOverlap(t *testing.T) {
	k := &rotate.JWTKey{GracePeriod: time.Hour}
	if got := k.MinOverlap(5 * time.Minute); got != time.Hour+15*time.Minute {
		t.Fatalf("MinOverlap = %v", got)
	}
	if got := (&rotate.JWTKey{}).MinOverlap(time.Minute); got != jwtkeys.DefaultGracePeriod+3*time.Minute {
		t.Fatalf("MinOverlap with the default grace period = %v", got)
	}
}

// TestJWTFromPair: a current value in jwtkeys' {"current", "previous"} form
// is rotated into a single JWK of the same kind; the pair, now previous,
// keeps verifying its current key through the overlap.
func TestJWTFromPair(t *testing.T) {
	ctx := ctxT(t)
	w := newJWTWorld(t, &rotate.JWTKey{Algorithm: rotate.ES256})
	a1, _ := w.key.Generate()
	a0, _ := w.key.Generate()
	pair, _ := json.Marshal(map[string]json.RawMessage{"current": a1, "previous": a0})
	w.src.Set(jwtKeyName, string(pair))
	w.key.Algorithm = "" // the kind of the pair's current key
	w.refresh(t, ctx)
	oldTok, oldKID := w.sign(t, ctx)
	hook := func(_ string, step secrets.RotationStep, recorded bool) error {
		if step == secrets.StepPromoted && recorded {
			w.refresh(t, ctx)
			if _, err := w.verifier.Verify(ctx, oldTok); err != nil {
				t.Errorf("during the overlap, a token of the pair's current key: %v", err)
			}
		}
		return nil
	}
	a := newAgent(t, w.src, w.key, w.clk, "a", rotate.WithOverlap(w.key.MinOverlap(jwtTTL)), rotate.WithStepHook(hook))
	if _, err := runClocked(t, w.clk, func() (rotate.Report, error) { return a.Rotate(ctx, jwtKeyName) }); err != nil {
		t.Fatal(err)
	}
	v := w.refresh(t, ctx)
	var j struct{ Kty, Crv, Kid string }
	if err := json.Unmarshal(v.Current.Bytes(), &j); err != nil || j.Kty != "EC" || j.Crv != "P-256" {
		t.Fatalf("the new value is not an EC P-256 JWK (kty %q crv %q, err %v)", j.Kty, j.Crv, err)
	}
	if _, kid := w.sign(t, ctx); kid != j.Kid || kid == oldKID {
		t.Fatalf("the Signer signs with kid %q, want the new JWK's %q", kid, j.Kid)
	}
	_, err := w.verifier.Verify(ctx, oldTok)
	wantRefused(t, "a token of the pair's key after the revoke", err, jwtkeys.ErrUnknownKey)
}

// TestJWTKeyOverlapDefault: the Agent takes a JWT key's overlap (grace window
// plus 3 × TTL) as its default and refuses a shorter one.
func TestJWTKeyOverlapDefault(t *testing.T) {
	src := memory.New()
	key := &rotate.JWTKey{GracePeriod: time.Hour}
	if _, err := rotate.New(src, key, time.Minute, rotate.WithOverlap(10*time.Minute)); err == nil {
		t.Fatal("an overlap shorter than the grace window was accepted")
	}
	if _, err := rotate.New(src, key, time.Minute); err != nil {
		t.Fatalf("the default overlap was refused: %v", err)
	}
	if _, err := rotate.New(src, key, time.Minute, rotate.WithOverlap(key.MinOverlap(time.Minute))); err != nil {
		t.Fatalf("the target's own minimum was refused: %v", err)
	}
}
