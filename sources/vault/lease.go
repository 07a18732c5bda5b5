package vault

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// A LeaseEventKind says what happened to the lease of a dynamic database
// credential.
type LeaseEventKind int

// The kinds of LeaseEvent.
const (
	// LeaseCreated: a new pair was read (database/creds/<role>); TTL is its
	// lease's duration.
	LeaseCreated LeaseEventKind = iota + 1
	// LeaseRenewed: the lease was renewed; TTL is the time Vault granted.
	LeaseRenewed
	// LeaseEnding: the lease cannot be renewed for a full term any more
	// (the role's max_ttl is near, the lease is not renewable, Vault
	// refused the renewal, or the token that read it was replaced); TTL is
	// what is left of it, and a new pair is read now. Err is the refusal,
	// if there was one.
	LeaseEnding
	// LeaseLost: Vault no longer has the lease (revoked from outside, or
	// with the token that read it); its pair is dropped at once.
	LeaseLost
	// LeaseExpired: a lease the source held reached its end: the pair is
	// no longer served, as current or previous.
	LeaseExpired
	// LeaseRevoked: Close revoked the lease (WithRevokeOnClose); Err is set
	// when the revocation failed.
	LeaseRevoked
)

// String returns the kind's name, such as "renewed".
func (k LeaseEventKind) String() string {
	switch k {
	case LeaseCreated:
		return "created"
	case LeaseRenewed:
		return "renewed"
	case LeaseEnding:
		return "ending"
	case LeaseLost:
		return "lost"
	case LeaseExpired:
		return "expired"
	case LeaseRevoked:
		return "revoked"
	}
	return "unknown"
}

// A LeaseEvent reports a step in the life of a dynamic database credential's
// lease (see WithLeaseEvents). It holds neither the credential nor the lease
// id (which lets whoever holds it, and is allowed to, renew or revoke the
// lease).
type LeaseEvent struct {
	Kind LeaseEventKind
	// Key is the role's path: "database/creds/app".
	Key string
	// Version is the version id of the pair the lease belongs to.
	Version string
	// TTL is the time left on the lease with the event, as Vault reported
	// it or as the source reckons it.
	TTL time.Duration
	// Err is the cause of a LeaseEnding that a refusal caused, or of a
	// failed LeaseRevoked.
	Err error
}

// WithLeaseEvents sets a function that the source calls on each event of a
// dynamic credential's lease (see LeaseEvent), for metrics, health checks and
// tests. Calls are made one at a time, from the goroutine of the fetch (or of
// Close) that caused them; fn must return quickly and must not call the
// Source.
func WithLeaseEvents(fn func(LeaseEvent)) Option {
	return func(s *Source) error {
		if fn == nil {
			return errors.New("vault: WithLeaseEvents(nil)")
		}
		s.db.onEvent = fn
		return nil
	}
}

// dynamicRole is what the source holds for one dynamic role: the lease whose
// pair it serves and, while its lease lives, the one it replaced; and, for
// WithRevokeOnClose, the older ones whose leases have not ended.
type dynamicRole struct {
	lock      chan struct{} // holds a token while a fetch or Close works on the role
	cur, prev *lease
	old       []*lease
}

// lease is one pair of dynamic credentials and its lease. Times are on the
// source's clock; Vault's durations are measured from just before the
// request that reported them, so the source's end is never later than
// Vault's.
type lease struct {
	id        string
	data      map[string]any // the credentials, as Vault gave them
	version   string
	increment int // seconds: what each renewal asks for, the lease's first duration
	start     time.Time
	end       time.Time
	final     bool     // the end cannot be moved: the pair is to be replaced
	sess      *session // the session whose token read it
}

// due is the point of the lease's current term at which it is renewed, or
// replaced when final.
func (l *lease) due(fraction float64) time.Time {
	return l.start.Add(time.Duration(fraction * float64(l.end.Sub(l.start))))
}

// role returns the state of the dynamic role at p, creating it.
func (d *dbState) role(p string) *dynamicRole {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.roles[p]
	if r == nil {
		r = &dynamicRole{lock: make(chan struct{}, 1)}
		d.roles[p] = r
	}
	return r
}

// fetchDynamic serves a dynamic role: the pair whose lease the source holds,
// renewed, replaced or read anew as its lease requires (see Database
// secrets engine in the package documentation).
func (s *Source) fetchDynamic(ctx context.Context, k secretKey, p string, known secrets.Versions, conditional bool) secrets.Result {
	r := s.db.role(p)
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return secrets.Result{Err: classify(ctx, "read", p, ctx.Err())}
	}
	defer func() { <-r.lock }()
	if s.isClosed() {
		return secrets.Result{Err: errClosed()}
	}
	if err := s.keepLease(ctx, p, r); err != nil {
		return secrets.Result{Err: err}
	}

	value, ok, err := valueOf(r.cur.data, k.field)
	if err != nil {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, err.Error(), nil)}
	}
	if !ok {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, "no field "+quoteName(k.field), nil)}
	}
	v := secrets.Versions{Current: secrets.NewSecret(k.key, r.cur.version, value), RefreshBy: r.cur.due(s.db.fraction)}
	if r.prev != nil {
		if value, ok, err := valueOf(r.prev.data, k.field); err == nil && ok {
			v.Previous = secrets.NewSecret(k.key, r.prev.version, value)
		}
		if r.prev.end.Before(v.RefreshBy) {
			v.RefreshBy = r.prev.end // to stop serving it as previous
		}
	}
	if conditional && known.Current.Version() == v.Current.Version() && known.Pending.IsZero() &&
		known.Previous.IsZero() == v.Previous.IsZero() && known.Previous.Version() == v.Previous.Version() {
		return secrets.Result{Unchanged: true, Versions: secrets.Versions{RefreshBy: v.RefreshBy}}
	}
	return secrets.Result{Versions: v}
}

// keepLease brings r up to date: it drops the leases that ended, checks that
// Vault still has the current one (a lookup) or renews it when due, and reads
// a new pair when there is none or the current one is to be replaced. On
// return without error r.cur is a live lease. The caller holds r.lock.
func (s *Source) keepLease(ctx context.Context, p string, r *dynamicRole) error {
	now := s.db.now()
	r.old = slices.DeleteFunc(r.old, func(l *lease) bool { return !now.Before(l.end) })
	if r.prev != nil && !now.Before(r.prev.end) {
		s.leaseEvent(LeaseEvent{Kind: LeaseExpired, Key: p, Version: r.prev.version})
		r.prev = nil
	}
	if r.cur != nil && !now.Before(r.cur.end) {
		s.leaseEvent(LeaseEvent{Kind: LeaseExpired, Key: p, Version: r.cur.version})
		r.cur = nil
	}
	replace := false
	if c := r.cur; c != nil {
		var err error
		switch {
		case c.sess != nil && c.sess.isRetired():
			// The token that read it was replaced: Vault revokes a
			// token's leases when the token expires or is revoked. A
			// lease already revoked with its token is lost, not kept
			// as previous.
			if lerr := s.lookupLease(ctx, p, c); leaseGone(lerr) {
				err = lerr
				break
			}
			if s.endWithToken(ctx, c); !s.db.now().Before(c.end) {
				s.leaseEvent(LeaseEvent{Kind: LeaseLost, Key: p, Version: c.version})
				r.cur = nil
				break
			}
			if !c.final {
				c.final = true
				s.leaseEvent(LeaseEvent{Kind: LeaseEnding, Key: p, Version: c.version, TTL: c.end.Sub(now)})
			}
			replace = true
		case c.final && !now.Before(c.due(s.db.fraction)):
			replace = true
		case !now.Before(c.due(s.db.fraction)):
			err = s.renewLease(ctx, p, c)
			replace = err == nil && c.final
		default:
			err = s.lookupLease(ctx, p, c)
		}
		switch {
		case err == nil:
		case leaseGone(err):
			s.leaseEvent(LeaseEvent{Kind: LeaseLost, Key: p, Version: c.version})
			s.log.LogAttrs(ctx, slog.LevelWarn, "vault: Vault no longer has the lease of the credentials served; reading new ones",
				slog.String("key", p))
			r.cur = nil
		case errors.Is(err, secrets.ErrPermission) && !c.final && statusOf(err) == http.StatusForbidden:
			// A policy without sys/leases/renew or sys/leases/lookup:
			// the lease cannot be kept, only replaced at its point.
			c.final = true
			s.log.LogAttrs(ctx, slog.LevelWarn, "vault: the token may not renew or look up the lease; the credentials will be replaced before it ends",
				slog.String("key", p), slog.String("error", err.Error()))
			s.leaseEvent(LeaseEvent{Kind: LeaseEnding, Key: p, Version: c.version, TTL: c.end.Sub(now), Err: err})
			replace = !now.Before(c.due(s.db.fraction))
		default:
			return err
		}
	}
	if r.cur != nil && !replace {
		return nil
	}
	n, err := s.readCreds(ctx, p)
	if err != nil {
		return err
	}
	if r.cur != nil {
		// Replaced while its lease lives: served as previous until it ends,
		// so that a pool can drain to the new pair.
		if r.prev != nil {
			r.old = append(r.old, r.prev)
		}
		r.prev = r.cur
	}
	r.cur = n
	return nil
}

// readCreds reads a new pair of a dynamic role.
func (s *Source) readCreds(ctx context.Context, p string) (*lease, error) {
	before := s.db.now()
	var sec *api.Secret
	sess, err := s.doIn(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		return nil, databaseError(ctx, "read", p, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, newError(secrets.ErrNotFound, "read", p, "", nil)
	}
	if sec.LeaseID == "" || sec.LeaseDuration <= 0 {
		return nil, newError(secrets.ErrInvalid, "read", p, "Vault gave the credentials no lease", nil)
	}
	whole, ok, err := valueOf(sec.Data, "")
	if err != nil || !ok {
		return nil, newError(secrets.ErrInvalid, "read", p, "the credentials cannot be encoded as JSON", nil)
	}
	data := make(map[string]any, len(sec.Data))
	for name, v := range sec.Data {
		data[name] = v
	}
	l := &lease{
		id:        sec.LeaseID,
		data:      data,
		version:   secrets.ContentVersion(whole),
		increment: sec.LeaseDuration,
		start:     before,
		end:       before.Add(leaseSeconds(sec.LeaseDuration)),
		final:     !sec.Renewable,
		sess:      sess,
	}
	ttl := l.end.Sub(before)
	s.leaseEvent(LeaseEvent{Kind: LeaseCreated, Key: p, Version: l.version, TTL: ttl})
	s.log.LogAttrs(ctx, slog.LevelInfo, "vault: read new database credentials",
		slog.String("key", p), slog.String("version", l.version), slog.Duration("ttl", ttl), slog.Bool("renewable", sec.Renewable))
	return l, nil
}

// renewLease renews l for its first duration. A renewal that Vault grants
// for less (the role's max_ttl is near), or that leaves the lease not
// renewable, or that Vault refuses as not renewable, makes l final.
func (s *Source) renewLease(ctx context.Context, p string, l *lease) error {
	before := s.db.now()
	var sec *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Sys().RenewWithContext(ctx, l.id, l.increment)
		return err
	})
	if err != nil {
		var re *api.ResponseError
		var oe *opError
		switch {
		case errors.As(err, &oe) || !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest:
		case hasMessage(re, "not renewable"):
			l.final = true
			s.leaseEvent(LeaseEvent{Kind: LeaseEnding, Key: p, Version: l.version, TTL: l.end.Sub(before), Err: classify(ctx, "renew the lease of", p, err)})
			return nil
		case hasMessage(re, "failed to renew entry") && !hasMessage(re, "could not find role"):
			// The engine could not extend the user in the database (it
			// refused, or is down): the lease runs on, and the next poll
			// tries again.
			return newError(secrets.ErrTransient, "renew the lease of", p, describe(re), re)
		}
		return databaseError(ctx, "renew the lease of", p, err)
	}
	if sec == nil {
		return newError(secrets.ErrInvalid, "renew the lease of", p, "Vault did not say for how long", nil)
	}
	l.start = before
	l.end = before.Add(leaseSeconds(sec.LeaseDuration))
	ttl := l.end.Sub(before)
	s.leaseEvent(LeaseEvent{Kind: LeaseRenewed, Key: p, Version: l.version, TTL: ttl})
	if !sec.Renewable || sec.LeaseDuration < l.increment {
		l.final = true
		s.leaseEvent(LeaseEvent{Kind: LeaseEnding, Key: p, Version: l.version, TTL: ttl})
		s.log.LogAttrs(ctx, slog.LevelInfo, "vault: the lease of the database credentials cannot be renewed for a full term; reading new ones",
			slog.String("key", p), slog.Duration("ttl", ttl))
	}
	return nil
}

// lookupLease asks Vault whether it still has l (sys/leases/lookup, in
// Vault's default policy). Only the lease's existence is used: the source
// keeps its own, earlier, reckoning of the end.
func (s *Source) lookupLease(ctx context.Context, p string, l *lease) error {
	err := s.do(ctx, func(c *api.Client) error {
		_, err := c.Sys().LookupWithContext(ctx, l.id)
		return err
	})
	if err != nil {
		return classify(ctx, "look up the lease of", p, err)
	}
	return nil
}

// endWithToken brings l's end forward to the expiry of the token that read
// it, when that comes first: Vault revokes a token's leases with it, so a
// pair replaced after a new login is served as previous only that long. The
// old token is asked itself (auth/token/lookup-self); one that Vault calls
// invalid has taken the lease with it. Other failures (a policy without
// lookup-self) leave l as it is.
func (s *Source) endWithToken(ctx context.Context, l *lease) {
	before := s.db.now()
	sec, err := l.sess.client.Auth().Token().LookupSelfWithContext(ctx)
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && hasMessage(re, "invalid token") {
		l.end = before
		return
	}
	if err != nil || sec == nil {
		return
	}
	ttl, err := sec.TokenTTL()
	if err != nil || ttl <= 0 {
		return // a token that does not expire
	}
	if end := before.Add(ttl); end.Before(l.end) {
		l.end = end
	}
}

// leaseGone reports whether err says that Vault has no such lease any more
// (revoked, expired, or never known).
func leaseGone(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusBadRequest &&
		hasMessage(re, "lease not found", "invalid lease", "lease expired", "lease is expired")
}

// revokeLeases revokes every lease the source holds, for Close with
// WithRevokeOnClose. It waits for fetches in flight on each role, and leaves
// the roles empty, so that a fetch after it reads nothing new (the source is
// closed by then).
func (s *Source) revokeLeases() error {
	if !s.db.revoke {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
	defer cancel()
	s.db.mu.Lock()
	roles := make(map[string]*dynamicRole, len(s.db.roles))
	for p, r := range s.db.roles {
		roles[p] = r
	}
	s.db.mu.Unlock()
	var errs []error
	for p, r := range roles {
		select {
		case r.lock <- struct{}{}:
		case <-ctx.Done():
			errs = append(errs, newError(secrets.ErrTransient, "revoke the leases of", p, "a fetch in flight did not end in time", nil))
			continue
		}
		now := s.db.now()
		for _, l := range append([]*lease{r.cur, r.prev}, r.old...) {
			if l == nil || !now.Before(l.end) {
				continue
			}
			err := s.revokeLease(ctx, l)
			if err != nil {
				err = classify(ctx, "revoke the lease of", p, err)
				errs = append(errs, err)
			}
			s.leaseEvent(LeaseEvent{Kind: LeaseRevoked, Key: p, Version: l.version, Err: err})
		}
		r.cur, r.prev, r.old = nil, nil, nil
		<-r.lock
	}
	return errors.Join(errs...)
}

// revokeLease revokes l with the token that read it, or with the one in
// use when a newer login replaced that token. Close makes no new login, and
// a login that Close overtook was never put in use, though its token may
// have read l.
func (s *Source) revokeLease(ctx context.Context, l *lease) error {
	sess := l.sess
	if sess == nil || sess.isRetired() {
		sess = s.sess.Load()
	}
	if sess == nil {
		return errClosed()
	}
	return sess.client.Sys().RevokeWithContext(ctx, l.id)
}

func (s *Source) leaseEvent(ev LeaseEvent) {
	if s.db.onEvent == nil {
		return
	}
	s.db.emitMu.Lock()
	defer s.db.emitMu.Unlock()
	s.db.onEvent(ev)
}

// isRetired reports whether a newer session has replaced ss.
func (ss *session) isRetired() bool {
	select {
	case <-ss.retired:
		return true
	default:
		return false
	}
}
