package rotate_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestConsumerRedirectToAnotherHost: an endpoint that answers with a
// redirect to another host (a misrouted proxy, a hostile server) is not
// counted by the document it points at, which is another server's; the
// message names the redirect without its target. A redirect on the same
// host is followed.
func TestConsumerRedirectToAnotherHost(t *testing.T) {
	src := memory.New()
	src.Set("db", "first")
	old, _ := src.Fetch(ctxT(t), "db")
	src.Set("db", "second")
	cur, _ := src.Fetch(ctxT(t), "db")
	current := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old-path" {
			http.Redirect(w, r, "/status", http.StatusMovedPermanently)
			return
		}
		fmt.Fprintf(w, `{"keys":[{"key":"mem://db","loaded":true,"version":%q}]}`, cur.Current.Version())
	}))
	defer current.Close()
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, current.URL+"/status?token=sekrit", http.StatusFound)
	}))
	defer elsewhere.Close()

	cons := rotate.Consumers{Endpoints: rotate.StaticEndpoints(elsewhere.URL + "/status"), Key: memKey}
	err := cons.Check(ctxT(t), "db", cur.Current, old.Current)
	var ce *rotate.ConsumersError
	if !errors.As(err, &ce) || len(ce.Waiting) != 1 || !errors.Is(err, rotate.ErrConsumerStatus) || ce.Waiting[0].Status != http.StatusFound {
		t.Fatalf("a redirect to another host: %v, want ErrConsumerStatus with HTTP 302", err)
	}
	if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), current.URL) {
		t.Fatalf("the message names the redirect's target: %v", err)
	}

	same := rotate.Consumers{Endpoints: rotate.StaticEndpoints(current.URL + "/old-path"), Key: memKey}
	if err := same.Check(ctxT(t), "db", cur.Current, old.Current); err != nil {
		t.Fatalf("a redirect on the same host: %v", err)
	}
}
