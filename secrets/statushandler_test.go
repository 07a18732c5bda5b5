package secrets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

func serveStatus(t *testing.T, st *secrets.Store, method string) (int, string, secrets.StatusDocument) {
	t.Helper()
	rec := httptest.NewRecorder()
	st.StatusHandler().ServeHTTP(rec, httptest.NewRequest(method, "/status", nil))
	var doc secrets.StatusDocument
	if method == http.MethodGet && rec.Code != http.StatusMethodNotAllowed {
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
	}
	return rec.Code, rec.Body.String(), doc
}

// TestStatusHandler: the document names the versions served, the pending
// one, the failures' classes and health, and never a value.
func TestStatusHandler(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", "hunter2-db-password")
	f.src.Set("api", "sk-api-key-value")
	f.get("db")
	f.get("api")
	code, body, doc := serveStatus(t, f.store, http.MethodGet)
	if code != http.StatusOK || !doc.Healthy || len(doc.Keys) != 2 {
		t.Fatalf("%d %s", code, body)
	}
	db := doc.Keys[1]
	if db.Key != "db" || db.Version == "" || !db.Loaded {
		t.Fatalf("db entry %+v", db)
	}

	// A failing refresh is reported by class, with the last good version.
	f.src.fail("api", fmt.Errorf("%w: throttled (api hunter2)", secrets.ErrTransient))
	f.clock.Advance(time.Second)
	_ = f.store.Refresh(f.ctx(), "api")
	code, body, doc = serveStatus(t, f.store, http.MethodGet)
	api := doc.Keys[0]
	if code != http.StatusOK || api.LastErrorClass != "transient" || api.Failures != 1 || api.Version == "" {
		t.Fatalf("%d api entry %+v", code, api)
	}
	for _, leak := range []string{"hunter2", "sk-api-key-value", "throttled"} {
		if strings.Contains(body, leak) {
			t.Fatalf("the status document holds %q:\n%s", leak, body)
		}
	}

	// HEAD has the code and no body; other methods are refused.
	if code, body, _ := serveStatus(t, f.store, http.MethodHead); code != http.StatusOK || body != "" {
		t.Fatalf("HEAD: %d %q", code, body)
	}
	if code, _, _ := serveStatus(t, f.store, http.MethodPost); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
}

// TestStatusHandlerUnhealthy: a required key that cannot be served makes
// the endpoint answer 503, for readiness probes.
func TestStatusHandlerUnhealthy(t *testing.T) {
	f := newFixture(t)
	f.src.fail("missing", secrets.ErrNotFound)
	if _, err := f.store.Get(f.ctx(), "missing"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatal(err)
	}
	code, body, doc := serveStatus(t, f.store, http.MethodGet)
	if code != http.StatusServiceUnavailable || doc.Healthy || doc.Keys[0].LastErrorClass != "not_found" {
		t.Fatalf("%d %s", code, body)
	}
}

func TestErrorClass(t *testing.T) {
	for err, want := range map[error]string{
		nil: "",
		&secrets.Error{Op: "validate", Key: "k", Err: fmt.Errorf("%w: %w", secrets.ErrRejected, secrets.ErrInvalid)}: "rejected",
		fmt.Errorf("x: %w", secrets.ErrPermission): "permission",
		secrets.ErrStale:             "stale",
		secrets.ErrClosed:            "closed",
		secrets.ErrInvalid:           "invalid",
		errors.New("something else"): "other",
	} {
		if got := secrets.ErrorClass(err); got != want {
			t.Errorf("ErrorClass(%v) = %q, want %q", err, got, want)
		}
	}
}
