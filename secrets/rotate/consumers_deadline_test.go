package rotate_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
)

// staleConsumer is a status endpoint that reports version of mem://db
// forever.
func staleConsumer(t *testing.T, version string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"key":"mem://db","loaded":true,"version":%q}]}`, version)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/status"
}

// atRevoke is a Target that records when it revokes.
type atRevoke struct {
	*fakeDB
	clk interface{ Now() time.Time }
	at  time.Time
}

func (r *atRevoke) Revoke(ctx context.Context, old, cur secrets.Secret, notes map[string]string) error {
	r.at = r.clk.Now()
	return r.fakeDB.Revoke(ctx, old, cur, notes)
}

// TestConsumerDeadlineIsNotOverrunByAPoll: with a consumer that never
// switches and a deadline that is not a whole number of polls past the
// overlap, the agent revokes at the deadline, not at the first poll after
// it.
func TestConsumerDeadlineIsNotOverrunByAPoll(t *testing.T) {
	src, db, clk := setup(t)
	old, _ := src.Fetch(ctxT(t), "db")
	w := &atRevoke{fakeDB: db, clk: clk}
	notify, promoted := promotedAt(clk)
	a := newAgent(t, src, w, clk, "a", notify, rotate.WithPollInterval(7*time.Second), rotate.WithOverlapDeadline(101*time.Second),
		rotate.WithConsumers(rotate.Consumers{Endpoints: rotate.StaticEndpoints(staleConsumer(t, old.Current.Version())), Key: memKey}))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	if got := w.at.Sub(promoted()); got != 101*time.Second {
		t.Fatalf("revoked %v after the promotion; the deadline is 101s", got)
	}
}

// TestConsumerDeadlineWarningNamesEveryConsumer: at the deadline, with more
// consumers behind than the summary names, every one of them is named in
// a warning: those are the servers that fail once the old credential is
// revoked.
func TestConsumerDeadlineWarningNamesEveryConsumer(t *testing.T) {
	src, db, clk := setup(t)
	old, _ := src.Fetch(ctxT(t), "db")
	var urls []string
	for range 6 {
		urls = append(urls, staleConsumer(t, old.Current.Version()))
	}
	var logs syncBuffer
	a := newAgent(t, src, db, clk, "a", rotate.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), rotate.WithOverlapDeadline(time.Minute),
		rotate.WithConsumers(rotate.Consumers{Endpoints: rotate.StaticEndpoints(urls...), Key: memKey}))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			warnings = append(warnings, l)
		}
	}
	for _, u := range urls {
		named := false
		for _, w := range warnings {
			named = named || strings.Contains(w, "consumer="+u) && strings.Contains(w, "still serves version")
		}
		if !named {
			t.Errorf("no warning at the deadline names %s and why:\n%s", u, strings.Join(warnings, "\n"))
		}
	}
}
