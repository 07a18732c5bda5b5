package secrets_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

type fieldSrc struct {
	mu sync.Mutex
	v  secrets.Versions
}

func (s *fieldSrc) set(cur, curID, pend, pendID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = secrets.Versions{Current: secrets.NewSecretString("db", curID, cur)}
	if pend != "" {
		s.v.Pending = secrets.NewSecretString("db", pendID, pend)
	}
}

func (s *fieldSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, nil
}

// A field key (db#password) whose pending value lacks the field: the
// refused adoption is no failure of the key, which the source keeps
// returning unchanged; it neither backs off nor goes stale.
func TestPendingWithoutTheFieldLeavesTheKeyHealthy(t *testing.T) {
	src := &fieldSrc{}
	src.set(`{"password":"old"}`, "v1", `{"pass":"new"}`, "v2")
	db := &database{password: "new"}
	st, clk := adoptStore(t, src, secrets.WithAuthWait(0), secrets.WithMaxStale(3*time.Minute))
	ctx := adoptCtx(t)
	h := secrets.WrapTool(st, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		pw, err := secrets.ViewFrom(ctx, st).Get(ctx, "db#password")
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		return struct{}{}, struct{}{}, db.login(pw.Reveal())
	})
	if _, _, err := h(ctx, struct{}{}, struct{}{}); !secrets.IsPostgresAuthError(err) {
		t.Fatalf("got %v", err)
	}
	var errs []string
	for range 4 {
		clk.Advance(time.Minute)
		if err := st.Refresh(ctx, "db#password"); err != nil {
			errs = append(errs, "Refresh: "+err.Error())
		}
	}
	if _, err := st.Get(ctx, "db#password"); err != nil {
		errs = append(errs, "Get: "+err.Error())
		if errors.Is(err, secrets.ErrStale) {
			errs = append(errs, "(fails closed; the source returns the served value every time)")
		}
	}
	if len(errs) > 0 {
		t.Fatalf("a healthy key fails:\n%s", strings.Join(errs, "\n"))
	}
}
