package secrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestTransportSendsExactlyTheCredential: whatever the Transport puts in
// the header either reaches the server byte for byte, or the request fails
// with an error that wraps ErrInvalid and names the key (never the value). A
// credential with leading or trailing white space (a space or tab an editor
// or a copy-paste leaves), which net/http would trim on the wire, is
// refused; white space inside a credential is sent as it is.
func TestTransportSendsExactlyTheCredential(t *testing.T) {
	const secretText = "s3cr3t-api-key"
	cases := []struct{ name, value string }{
		{"trailing space", secretText + " "},
		{"trailing tab", secretText + "\t"},
		{"leading space", " " + secretText},
		{"leading tab", "\t" + secretText},
		{"space inside", "s3cr3t api-key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Header.Get("X-Api-Key"))
				mu.Unlock()
			}))
			defer srv.Close()
			src := memory.New()
			src.Set("api_key", c.value)
			store, err := secrets.New(src)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			client := &http.Client{Transport: secrets.NewTransport(store, "api_key",
				secrets.WithHeader("X-Api-Key", ""), secrets.WithBase(srv.Client().Transport))}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				if strings.Contains(err.Error(), secretText) {
					t.Fatalf("the error holds the value: %v", err)
				}
				if !strings.Contains(err.Error(), "api_key") {
					t.Fatalf("the error does not name the key: %v", err)
				}
				if !errors.Is(err, secrets.ErrInvalid) {
					t.Fatalf("the error does not wrap ErrInvalid: %v", err)
				}
				if strings.TrimSpace(c.value) == c.value {
					t.Fatalf("a credential without edge white space was refused: %v", err)
				}
				return // refused, with a clear error: fine
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != c.value {
				t.Fatalf("the Transport reported no error, but the server received %q instead of the credential %q", got, c.value)
			}
		})
	}
}
