package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// engineDatabase is the location.version of a key under a mount of the
// database secrets engine (KV mounts have 1 or 2).
const engineDatabase = -1

// DefaultLeaseFraction is the point of each lease term at which the source
// renews a dynamic credential's lease, or, when the lease cannot be renewed
// for a full term, reads a new pair: two thirds of the way from the term's
// start to its end, as Vault Agent and api.LifetimeWatcher renew.
const DefaultLeaseFraction = 2.0 / 3

// Fixed points of a static role's schedule.
const (
	// staticGrace is how long after a static role's announced rotation the
	// source asks to be read again: Vault rounds the ttl it reports to the
	// second.
	staticGrace = time.Second
	// staticOverdueWait is how soon a static role whose rotation is due
	// (Vault reports ttl 0) is read again: Vault's rotation queue runs every
	// five seconds, and retries a failed rotation after ten.
	staticOverdueWait = 2 * time.Second
	// revokeTimeout bounds the revocations Close makes (WithRevokeOnClose).
	revokeTimeout = 15 * time.Second
)

// staticScheduleFields are the fields of a static role's response that say
// when it rotates, not what the credential is: the value leaves them out, so
// that it changes only when the credential does.
var staticScheduleFields = []string{"ttl", "last_vault_rotation", "rotation_period", "rotation_schedule", "rotation_window"}

// dbState is the Source's part for the database secrets engine: its options
// and the dynamic credentials it holds.
type dbState struct {
	fraction float64
	revoke   bool
	clock    secrets.Clock
	onEvent  func(LeaseEvent)
	emitMu   sync.Mutex // serialises onEvent

	mu    sync.Mutex
	roles map[string]*dynamicRole // "<mount>/creds/<role>" → what is held for it
}

func newDBState() *dbState {
	return &dbState{
		fraction: DefaultLeaseFraction,
		clock:    secrets.SystemClock,
		roles:    map[string]*dynamicRole{},
	}
}

func (d *dbState) now() time.Time { return d.clock.Now() }

// WithDatabaseMount declares that the database secrets engine is mounted at
// path ("database"), so that its keys are read without asking Vault what is
// mounted there (see Mounts in the package documentation). It may be given
// once per mount.
func WithDatabaseMount(path string) Option {
	return func(s *Source) error {
		p := strings.Trim(path, "/")
		if p == "" || !validPath(p) {
			return fmt.Errorf("vault: WithDatabaseMount(%s): not a mount path", keyquote.Quote(path))
		}
		s.declared[p] = engineDatabase
		return nil
	}
}

// WithLeaseFraction sets the point of each term of a dynamic credential's
// lease, as a fraction of the term (0 < f < 1, default
// DefaultLeaseFraction, two thirds), at which the source renews the lease
// or, when it can no longer be renewed for a full term, reads a new pair.
// The Store is asked to refresh the key at that point (Versions.RefreshBy).
// A smaller fraction leaves more of the old lease for validating the new
// pair and letting a pool drain to it, at the cost of more renewals and
// more pairs.
func WithLeaseFraction(f float64) Option {
	return func(s *Source) error {
		if !(f > 0 && f < 1) {
			return fmt.Errorf("vault: WithLeaseFraction(%v): want 0 < f < 1", f)
		}
		s.db.fraction = f
		return nil
	}
}

// WithRevokeOnClose makes Close revoke the leases of the dynamic credentials
// the source holds (PUT sys/leases/revoke, which the token's policy must
// allow), so that their database users are dropped at once.
//
// It is off by default, and the leases expire at the end of their TTL: a
// revocation drops a user whose sessions may still be serving requests (a
// pool drains after Close, a rolling deployment keeps the old process
// answering until the new one is ready), the token usually lacks the
// capability, and a short default_ttl on the role bounds the life of
// credentials left behind anyway. Turn it on where the credentials must not
// outlive the process, and close the pool first.
func WithRevokeOnClose() Option {
	return func(s *Source) error {
		s.db.revoke = true
		return nil
	}
}

// WithClock sets the clock by which the source dates the leases and
// rotations of the database secrets engine, and so the Versions.RefreshBy
// it reports. Give a Store and its Source the same clock (secrets.WithClock):
// the Store compares RefreshBy with its own clock. Vault's TTLs are
// durations, so a clock that is not the wall clock only shifts them. The
// default is secrets.SystemClock.
func WithClock(c secrets.Clock) Option {
	return func(s *Source) error {
		if c == nil {
			return errors.New("vault: WithClock(nil)")
		}
		s.db.clock = c
		return nil
	}
}

// databaseKey is a key under a database secrets engine mount.
type databaseKey struct {
	static bool
	path   string // "<mount>/creds/<role>" or "<mount>/static-creds/<role>"
}

// parseDatabaseKey checks a key under a database engine mount: the path in
// the mount must be creds/<role> or static-creds/<role>.
func parseDatabaseKey(k secretKey, loc location) (databaseKey, error) {
	kind, role, ok := strings.Cut(loc.rel, "/")
	if !ok || role == "" || strings.Contains(role, "/") || (kind != "creds" && kind != "static-creds") {
		return databaseKey{}, newError(secrets.ErrInvalid, "parse key", k.path,
			"under database mount "+quoteName(loc.mount)+", want creds/<role> or static-creds/<role>", nil)
	}
	return databaseKey{static: kind == "static-creds", path: loc.mount + "/" + loc.rel}, nil
}

// fetchDatabase serves a key under a database secrets engine mount.
func (s *Source) fetchDatabase(ctx context.Context, k secretKey, loc location, known secrets.Versions, conditional bool) secrets.Result {
	dk, err := parseDatabaseKey(k, loc)
	if err != nil {
		return secrets.Result{Err: err}
	}
	if dk.static {
		return s.fetchStatic(ctx, k, dk.path, known, conditional)
	}
	return s.fetchDynamic(ctx, k, dk.path, known, conditional)
}

// fetchStatic reads a static role's credentials. One read, whether or not
// the Store holds them: the engine has no cheaper way to say.
func (s *Source) fetchStatic(ctx context.Context, k secretKey, p string, known secrets.Versions, conditional bool) secrets.Result {
	before := s.db.now()
	var sec *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		return secrets.Result{Err: databaseError(ctx, "read", p, err)}
	}
	if sec == nil || sec.Data == nil {
		return secrets.Result{Err: newError(secrets.ErrNotFound, "read", p, "", nil)}
	}
	data := make(map[string]any, len(sec.Data))
	for name, v := range sec.Data {
		data[name] = v
	}
	for _, name := range staticScheduleFields {
		delete(data, name)
	}
	whole, ok, err := valueOf(data, "")
	if err != nil || !ok {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, "the credentials cannot be encoded as JSON", nil)}
	}
	value, ok, err := valueOf(data, k.field)
	if err != nil {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, err.Error(), nil)}
	}
	if !ok {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, "no field "+quoteName(k.field), nil)}
	}
	// The time of the last rotation names the credential: it changes with
	// each rotation, and every process reading the role agrees on it.
	id, _ := sec.Data["last_vault_rotation"].(string)
	if id == "" {
		id = secrets.ContentVersion(whole)
	}
	// A ttl that is not a number says nothing of the schedule: the
	// Store's TTL alone governs, rather than a read every two seconds.
	var by time.Time
	if ttl, ok := seconds(sec.Data["ttl"]); ok && ttl > 0 {
		by = before.Add(ttl).Add(staticGrace)
	} else if ok {
		by = before.Add(staticOverdueWait)
	}
	cur := secrets.NewSecret(k.key, id, value)
	if conditional && known.Current.Version() == id && known.Current.Equal(cur) &&
		known.Previous.IsZero() && known.Pending.IsZero() {
		return secrets.Result{Unchanged: true, Versions: secrets.Versions{RefreshBy: by}}
	}
	return secrets.Result{Versions: secrets.Versions{Current: cur, RefreshBy: by}}
}

// seconds reads a duration in seconds that Vault encoded as a JSON number.
func seconds(v any) (time.Duration, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, false
		}
		f = x
	case float64:
		f = n
	case int:
		f = float64(n)
	default:
		return 0, false
	}
	if f < 0 {
		f = 0
	}
	if f >= float64(maxSeconds) {
		return maxSeconds * time.Second, true
	}
	return time.Duration(f * float64(time.Second)), true
}

// maxSeconds is the longest duration, in whole seconds, that a
// time.Duration holds: Vault's longer TTLs are cut to it, which moves their
// end earlier, never later, and keeps it after their start.
const maxSeconds = time.Duration(math.MaxInt64 / int64(time.Second))

// leaseSeconds turns a lease duration that Vault gave in seconds into a
// time.Duration, cut to maxSeconds.
func leaseSeconds(n int) time.Duration {
	if int64(n) > int64(maxSeconds) {
		return maxSeconds * time.Second
	}
	return time.Duration(n) * time.Second
}

// databaseError classifies an error of the database engine: a role that does
// not exist, which Vault reports as a bad request ("unknown role" when read,
// "could not find role" when a lease of it is renewed), is not found; the
// rest as classify does.
func databaseError(ctx context.Context, op, path string, err error) error {
	var re *api.ResponseError
	var oe *opError
	if !errors.As(err, &oe) && errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && hasMessage(re, "unknown role", "could not find role") {
		return newError(secrets.ErrNotFound, op, path, describe(re), re)
	}
	return classify(ctx, op, path, err)
}

// hasMessage reports whether one of Vault's messages in re contains text.
func hasMessage(re *api.ResponseError, texts ...string) bool {
	for _, m := range re.Errors {
		for _, t := range texts {
			if strings.Contains(m, t) {
				return true
			}
		}
	}
	return false
}
