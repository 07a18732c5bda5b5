package secrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestTransportHeaderValue: a credential a header field cannot carry (the
// trailing newline an editor leaves, a line break, a control character) is
// never sent. The request fails with an error that wraps ErrInvalid, names
// the key and the header, says what is wrong, and holds nothing of the value.
func TestTransportHeaderValue(t *testing.T) {
	const secretText = "s3cr3t-api-key"
	cases := []struct {
		name, value, header, want string
	}{
		{"trailing LF", secretText + "\n", "", "trailing newline"},
		{"trailing CRLF", secretText + "\r\n", "", "trailing newline"},
		{"inner line break", secretText + "\nX-Injected: 1", "", "line break"},
		{"NUL", secretText + "\x00", "X-Api-Key", "control character 0x00"},
		{"DEL", "\x7f" + secretText, "X-Api-Key", "control character 0x7f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			defer srv.Close()
			src := memory.New()
			src.Set("api_key", c.value)
			store, err := secrets.New(src)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			var opts []secrets.TransportOption
			header := "Authorization"
			if c.header != "" {
				header = c.header
				opts = append(opts, secrets.WithHeader(c.header, ""))
			}
			opts = append(opts, secrets.WithBase(srv.Client().Transport))
			client := &http.Client{Transport: secrets.NewTransport(store, "api_key", opts...)}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("a credential that cannot go into a header was sent")
			}
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("the error does not wrap ErrInvalid: %v", err)
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.Key != "api_key" {
				t.Errorf("the error is not a *secrets.Error for api_key: %v", err)
			}
			msg := err.Error()
			for _, s := range []string{`"api_key"`, header, c.want} {
				if !strings.Contains(msg, s) {
					t.Errorf("the error does not say %q: %s", s, msg)
				}
			}
			if strings.Contains(msg, secretText) || strings.Contains(msg, "Injected") {
				t.Errorf("the error holds the value: %s", msg)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the server got %d requests", n)
			}
		})
	}
}

// TestTransportHeaderValueAfterFix: once the value is fixed (the newline
// removed), the same Transport sends it.
func TestTransportHeaderValueAfterFix(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	src := memory.New()
	src.Set("api_key", "k1\n")
	store, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client := &http.Client{Transport: secrets.NewTransport(store, "api_key", secrets.WithBase(srv.Client().Transport))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if resp, err := client.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("the value with a newline was sent")
	}
	src.Set("api_key", "k1")
	if err := store.Refresh(ctx, "api_key"); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v, _ := got.Load().(string); v != "Bearer k1" {
		t.Errorf("the server got %q", v)
	}
}

// TestTransportHeaderValueOnRetry: after a 401, a new version that cannot go
// into a header is not sent either, and the caller learns why rather than
// getting the old credential's 401.
func TestTransportHeaderValueOnRetry(t *testing.T) {
	src := memory.New()
	src.Set("api_key", "old")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		src.Set("api_key", "new\n") // rotated, with a newline, while the request ran
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	store, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client := &http.Client{Transport: secrets.NewTransport(store, "api_key", secrets.WithBase(srv.Client().Transport))}
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %s, want the error about the new value", resp.Status)
	}
	if !errors.Is(err, secrets.ErrInvalid) || !strings.Contains(err.Error(), "trailing newline") {
		t.Errorf("err = %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
}
