package vault

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// A TokenEventKind says what happened to the source's Vault token.
type TokenEventKind int

// The kinds of TokenEvent.
const (
	// TokenAdopted: at first use, the client's own token was looked up
	// (auth/token/lookup-self) to learn its TTL and whether it renews.
	TokenAdopted TokenEventKind = iota + 1
	// TokenLoggedIn: a login through the WithAuth method gave a new token,
	// which replaced the old one for every request from then on.
	TokenLoggedIn
	// TokenLoginFailed: a login failed; Err says why. A login that the
	// token's expiry started is tried again with backoff; one that a
	// rejected request started fails that request.
	TokenLoginFailed
	// TokenRenewed: the token was renewed; TTL is its new TTL.
	TokenRenewed
	// TokenRenewalEnded: the token can no longer be renewed (it reached
	// its maximum TTL, or it is not renewable, or renewals kept failing)
	// and is close to expiring. With WithAuth, a login follows.
	TokenRenewalEnded
)

// String returns the kind's name, such as "renewed".
func (k TokenEventKind) String() string {
	switch k {
	case TokenAdopted:
		return "adopted"
	case TokenLoggedIn:
		return "logged-in"
	case TokenLoginFailed:
		return "login-failed"
	case TokenRenewed:
		return "renewed"
	case TokenRenewalEnded:
		return "renewal-ended"
	}
	return "unknown"
}

// A TokenEvent reports a step in the lifecycle of the source's token (see
// WithTokenEvents). It never holds the token itself.
type TokenEvent struct {
	Kind TokenEventKind
	// Accessor is the token's accessor, "" when unknown. An accessor is not
	// the token, but it lets whoever holds it (and is allowed to) look the
	// token up and revoke it: do not log it where tokens may not be logged.
	Accessor string
	// TTL is the token's remaining lifetime as Vault reported it with the
	// event; 0 for a token that never expires, or when not known.
	TTL time.Duration
	// Renewable reports whether Vault allows the token to be renewed.
	Renewable bool
	// Err is the cause of TokenLoginFailed, and of a TokenRenewalEnded
	// that followed failed renewals.
	Err error
}

// A session is one token in use: a copy of the client that sends it. A
// session is never changed once published; a new token means a new session,
// swapped in atomically, so a request uses one token from start to end.
type session struct {
	client  *api.Client
	retired chan struct{} // closed when a newer session replaced this one
	once    sync.Once
}

func newSession(c *api.Client) *session {
	return &session{client: c, retired: make(chan struct{})}
}

func (ss *session) retire() { ss.once.Do(func() { close(ss.retired) }) }

// do runs fn with the current session's client. When fn fails with 403
// because the token is no longer valid (expired, revoked) and an auth method
// is set, it logs in again, once for all the requests that hit the same
// rejected token, and runs fn once more with the new token.
func (s *Source) do(ctx context.Context, fn func(c *api.Client) error) error {
	_, err := s.doIn(ctx, fn)
	return err
}

// doIn is do, and also returns the session whose token made the last
// request (nil when there was none).
func (s *Source) doIn(ctx context.Context, fn func(c *api.Client) error) (*session, error) {
	sess, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	err = fn(sess.client)
	if err == nil || s.auth == nil || statusOf(err) != http.StatusForbidden {
		return sess, err
	}
	if !s.tokenRejected(ctx, sess, err) {
		return sess, err // a policy that denies the path: the token is fine
	}
	next, lerr := s.establish(ctx, sess)
	if lerr != nil {
		return nil, lerr
	}
	return next, fn(next.client)
}

// tokenRejected tells a 403 caused by the token (expired, revoked) from one
// caused by a policy. Vault says "invalid token" for the former; for an older
// Vault that does not, the token is looked up: a token that can look itself
// up is valid.
func (s *Source) tokenRejected(ctx context.Context, sess *session, err error) bool {
	if s.sess.Load() != sess {
		return true // replaced since: retry with the new token
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		for _, m := range re.Errors {
			if strings.Contains(m, "invalid token") {
				return true
			}
		}
	}
	_, lerr := sess.client.Auth().Token().LookupSelfWithContext(ctx)
	return statusOf(lerr) == http.StatusForbidden
}

// current returns the session in use, opening the first one if need be.
func (s *Source) current(ctx context.Context) (*session, error) {
	if sess := s.sess.Load(); sess != nil {
		return sess, nil
	}
	return s.establish(ctx, nil)
}

// establish replaces the session old (nil: none yet) with a new one and
// returns it. Concurrent calls share one login, which runs on the source's
// context: a caller whose ctx ends returns at once without failing the
// others. If old has already been replaced, establish returns its
// replacement without logging in.
func (s *Source) establish(ctx context.Context, old *session) (*session, error) {
	ch := s.flight.DoChan("session", func() (any, error) {
		if !s.enter() {
			return nil, errClosed()
		}
		defer s.wg.Done()
		if cur := s.sess.Load(); cur != old {
			return cur, nil
		}
		lctx, cancel := context.WithTimeout(s.ctx, loginTimeout)
		defer cancel()
		return s.open(lctx, old == nil)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*session), nil
	}
}

// open makes and publishes a new session. The first one adopts the client's
// token, when it has one that Vault accepts; later ones log in.
func (s *Source) open(ctx context.Context, first bool) (*session, error) {
	if first && s.token0 != "" {
		c, err := s.clientWith(s.token0)
		if err != nil {
			return nil, classify(ctx, "copy the client", "", err)
		}
		sec, err := c.Auth().Token().LookupSelfWithContext(ctx)
		switch {
		case err == nil && sec != nil:
			info := lookupAuth(s.token0, sec)
			s.emit(TokenEvent{Kind: TokenAdopted, Accessor: info.Auth.Accessor,
				TTL: time.Duration(info.Auth.LeaseDuration) * time.Second, Renewable: info.Auth.Renewable})
			sess := newSession(c)
			s.publish(sess, info)
			return sess, nil
		case statusOf(err) == http.StatusForbidden && s.auth != nil:
			s.log.LogAttrs(ctx, slog.LevelWarn, "vault: the client's token was rejected; logging in")
		case statusOf(err) == http.StatusForbidden || (err == nil && sec == nil):
			// The token may not look itself up (a policy without
			// auth/token/lookup-self): use it as it is, unmanaged.
			s.log.LogAttrs(ctx, slog.LevelWarn, "vault: cannot look up the client's token; it will not be renewed")
			sess := newSession(c)
			s.publish(sess, nil)
			return sess, nil
		default:
			return nil, classify(ctx, "look up the token", "", err)
		}
	}
	if s.auth == nil {
		// No token and no way to get one: requests go out without one,
		// as behind a Vault Agent or Proxy that adds it.
		c, err := s.clientWith("")
		if err != nil {
			return nil, classify(ctx, "copy the client", "", err)
		}
		sess := newSession(c)
		s.publish(sess, nil)
		return sess, nil
	}
	c, err := s.clientWith("")
	if err != nil {
		return nil, classify(ctx, "copy the client", "", err)
	}
	sec, err := c.Auth().Login(ctx, s.auth) // sets c's token
	if err != nil {
		err = loginError(ctx, err)
		s.emit(TokenEvent{Kind: TokenLoginFailed, Err: err})
		s.log.LogAttrs(ctx, slog.LevelWarn, "vault: login failed", slog.String("error", err.Error()))
		return nil, err
	}
	ev := TokenEvent{Kind: TokenLoggedIn}
	if sec.Auth != nil {
		ev.Accessor, ev.Renewable = sec.Auth.Accessor, sec.Auth.Renewable
		ev.TTL = time.Duration(sec.Auth.LeaseDuration) * time.Second
	}
	s.emit(ev)
	s.log.LogAttrs(ctx, slog.LevelInfo, "vault: logged in",
		slog.Duration("ttl", ev.TTL), slog.Bool("renewable", ev.Renewable))
	sess := newSession(c)
	s.publish(sess, sec)
	return sess, nil
}

// lookupAuth turns a lookup-self answer into the form of a login answer,
// which is what api.LifetimeWatcher takes.
func lookupAuth(token string, sec *api.Secret) *api.Secret {
	ttl, _ := sec.TokenTTL()
	renewable, _ := sec.TokenIsRenewable()
	accessor, _ := sec.TokenAccessor()
	secs := int((ttl + time.Second - 1) / time.Second)
	if et, _ := sec.Data["expire_time"].(string); secs <= 0 && et != "" {
		// Vault counts whole seconds: a token in its last second says
		// ttl 0, like one that never expires, but has an expiry time.
		secs = 1
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   token,
		Accessor:      accessor,
		LeaseDuration: secs,
		Renewable:     renewable,
	}}
}

// publish makes sess the session in use, retires the one it replaces and,
// for a token that expires, starts watching its lifetime. The caller holds
// a registration with s.wg (see enter).
func (s *Source) publish(sess *session, info *api.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if old := s.sess.Swap(sess); old != nil {
		old.retire()
	}
	if info == nil || info.Auth == nil || info.Auth.LeaseDuration <= 0 {
		return // a token that never expires (root, or unknown)
	}
	if !info.Auth.Renewable && s.auth == nil {
		return // nothing to do before it expires
	}
	s.wg.Add(1)
	go s.watch(sess, info)
}

// watch renews the token of sess with an api.LifetimeWatcher until sess is
// replaced or the source closes. When the token can be renewed no further,
// it logs in again (with WithAuth).
func (s *Source) watch(sess *session, info *api.Secret) {
	defer s.wg.Done()
	// A copy of its own, so that a renewal in flight holds Close up for
	// renewTimeout at most.
	wc, err := s.clientWith(sess.client.Token())
	var w *api.LifetimeWatcher
	if err == nil {
		wc.SetClientTimeout(renewTimeout)
		w, err = wc.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: info})
	}
	if err != nil {
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "vault: cannot watch the token's lifetime", slog.String("error", causeText(err)))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.Start()
	}()
	for {
		select {
		case <-s.ctx.Done():
			w.Stop()
			<-w.DoneCh()
			return
		case <-sess.retired:
			w.Stop()
			<-w.DoneCh()
			return
		case out := <-w.RenewCh():
			ev := TokenEvent{Kind: TokenRenewed}
			if out != nil && out.Secret != nil && out.Secret.Auth != nil {
				a := out.Secret.Auth
				ev.Accessor, ev.Renewable = a.Accessor, a.Renewable
				ev.TTL = time.Duration(a.LeaseDuration) * time.Second
			}
			s.emit(ev)
			s.log.LogAttrs(s.ctx, slog.LevelDebug, "vault: token renewed", slog.Duration("ttl", ev.TTL))
		case err := <-w.DoneCh():
			ev := TokenEvent{Kind: TokenRenewalEnded, Accessor: info.Auth.Accessor}
			if err != nil {
				ev.Err = classify(s.ctx, "renew the token", "", err)
			}
			s.emit(ev)
			if s.auth == nil {
				attrs := []slog.Attr{}
				if ev.Err != nil {
					attrs = append(attrs, slog.String("error", ev.Err.Error()))
				}
				s.log.LogAttrs(s.ctx, slog.LevelWarn, "vault: the token can no longer be renewed and no auth method is set; requests will fail once it expires", attrs...)
				return
			}
			s.log.LogAttrs(s.ctx, slog.LevelInfo, "vault: the token can no longer be renewed; logging in again")
			s.relogin(sess)
			return
		}
	}
}

// relogin replaces old with a new login, trying again with backoff until it
// succeeds, someone else replaces old, or the source closes.
func (s *Source) relogin(old *session) {
	for attempt := 1; ; attempt++ {
		if _, err := s.establish(s.ctx, old); err == nil || s.ctx.Err() != nil {
			return
		}
		t := time.NewTimer(reloginBackoff(attempt))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-old.retired:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// reloginBackoff is the wait after the n-th failed background login: full
// jitter over [0, min(max, min·2ⁿ⁻¹)).
func reloginBackoff(n int) time.Duration {
	ceil := reloginBackoffMax
	if n < 30 {
		if d := reloginBackoffMin << (n - 1); d < ceil {
			ceil = d
		}
	}
	return rand.N(ceil) + time.Millisecond
}

func (s *Source) emit(ev TokenEvent) {
	if s.onEvent == nil {
		return
	}
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.onEvent(ev)
}
