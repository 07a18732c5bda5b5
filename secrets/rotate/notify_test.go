package rotate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets/rotate"
)

// TestWebhook: outcomes are posted as JSON with a Slack-compatible text
// field; steps are not; no value is ever in a message.
func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	src, db, clk := setup(t)
	a := newAgent(t, src, db, clk, "a", rotate.WithNotify(rotate.Webhook(srv.URL, srv.Client(), 10*time.Second, quiet())))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(context.Background(), "db") }); err != nil {
		t.Fatal(err)
	}
	db.failVerify = true
	_, _ = runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(context.Background(), "db") })
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("%d posts, want 2 (success, rollback)", len(bodies))
	}
	v, _ := src.Fetch(context.Background(), "db")
	for i, want := range []string{"succeeded", "rolled-back"} {
		var m map[string]string
		if err := json.Unmarshal([]byte(bodies[i]), &m); err != nil {
			t.Fatal(err)
		}
		if m["outcome"] != want || !strings.Contains(m["text"], want[:6]) {
			t.Fatalf("post %d: %s", i, bodies[i])
		}
		if strings.Contains(bodies[i], v.Current.Reveal()) || strings.Contains(bodies[i], "initial-password") {
			t.Fatal("a post holds a value")
		}
	}
}
