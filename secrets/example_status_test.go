package secrets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// The status endpoint tells a readiness probe whether the Store can serve its
// keys, and tells a rotation agent which version each instance serves before
// it revokes the old one.
func ExampleStore_StatusHandler() {
	backend := memory.New()
	backend.Set("api_key", "first")
	store, err := secrets.New(backend, secrets.WithRequired("api_key"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if _, err := store.Get(context.Background(), "api_key"); err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /secrets/status", store.StatusHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/secrets/status")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var doc secrets.StatusDocument
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, doc.Healthy)
	for _, k := range doc.Keys {
		fmt.Println(k.Key, "serves", k.Version, "failures:", k.Failures)
	}
	// Output:
	// 200 true
	// api_key serves 1 failures: 0
}
