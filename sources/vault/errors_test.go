package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

func respErr(status int, msgs ...string) *api.ResponseError {
	return &api.ResponseError{HTTPMethod: "GET", URL: "http://vault:8200/v1/secret/data/x", StatusCode: status, Errors: msgs}
}

func TestClassifyResponses(t *testing.T) {
	cases := []struct {
		status int
		msgs   []string
		class  error
	}{
		{404, nil, secrets.ErrNotFound},
		{403, []string{"1 error occurred:\n\t* permission denied\n\n"}, secrets.ErrPermission},
		{403, []string{"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"}, secrets.ErrPermission},
		{401, nil, secrets.ErrPermission},
		{429, []string{"request path \"secret/data/x\": rate limit quota exceeded"}, secrets.ErrTransient},
		{412, nil, secrets.ErrTransient},
		{408, nil, secrets.ErrTransient},
		{500, []string{"internal error"}, secrets.ErrTransient},
		{502, nil, secrets.ErrTransient},
		{503, []string{"Vault is sealed"}, secrets.ErrTransient},
		{504, nil, secrets.ErrTransient},
		{501, nil, secrets.ErrInvalid},
		{400, []string{"invalid path"}, secrets.ErrInvalid},
		{405, nil, secrets.ErrInvalid},
	}
	all := []error{secrets.ErrNotFound, secrets.ErrPermission, secrets.ErrTransient, secrets.ErrInvalid}
	for _, tc := range cases {
		re := respErr(tc.status, tc.msgs...)
		// The api package wraps its errors in messages of its own.
		err := classify(context.Background(), "read", "secret/data/x", fmt.Errorf("reading: %w", re))
		for _, c := range all {
			if errors.Is(err, c) != (c == tc.class) {
				t.Errorf("HTTP %d: errors.Is(err, %v) = %v", tc.status, c, errors.Is(err, c))
			}
		}
		var got *api.ResponseError
		if !errors.As(err, &got) || got != re {
			t.Errorf("HTTP %d: the *api.ResponseError is not in the chain", tc.status)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("HTTP %d: message spans lines: %q", tc.status, err.Error())
		}
		if !strings.HasPrefix(err.Error(), `vault: read "secret/data/x": `) || !strings.Contains(err.Error(), fmt.Sprint("HTTP ", tc.status)) {
			t.Errorf("HTTP %d: message %q", tc.status, err.Error())
		}
	}
}

func TestClassifyRawBody(t *testing.T) {
	re := &api.ResponseError{StatusCode: 502, RawError: true, Errors: []string{"<html>upstream said s3cr3t</html>"}}
	err := classify(context.Background(), "read", "p", re)
	if !errors.Is(err, secrets.ErrTransient) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("raw body: %v", err)
	}
}

func TestClassifyOthers(t *testing.T) {
	bg := context.Background()
	canceled, cancel := context.WithCancel(bg)
	cancel()
	urlErr := &url.Error{Op: "Get", URL: "http://vault:8200/v1/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}

	err := classify(bg, "read", "p", &url.Error{Op: "Get", URL: "u", Err: context.Canceled})
	if !errors.Is(err, context.Canceled) || errors.Is(err, secrets.ErrTransient) {
		t.Errorf("canceled: %v", err)
	}
	err = classify(canceled, "read", "p", urlErr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error after the caller's cancellation: %v", err)
	}
	err = classify(bg, "read", "p", &url.Error{Op: "Get", URL: "u", Err: context.DeadlineExceeded})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, secrets.ErrTransient) {
		t.Errorf("deadline: %v", err)
	}
	err = classify(bg, "read", "p", urlErr)
	var ue *url.Error
	if !errors.Is(err, secrets.ErrTransient) || !errors.As(err, &ue) {
		t.Errorf("connection refused: %v", err)
	}
	if err := classify(bg, "read", "p", io.ErrUnexpectedEOF); !errors.Is(err, secrets.ErrTransient) {
		t.Errorf("unexpected EOF: %v", err)
	}
	var syn *json.SyntaxError
	jerr := json.Unmarshal([]byte(`{"password": s3cr3t}`), &map[string]any{})
	if !errors.As(jerr, &syn) {
		t.Fatalf("setup: %v", jerr)
	}
	err = classify(bg, "read", "p", fmt.Errorf("parse: %w", jerr))
	if !errors.Is(err, secrets.ErrInvalid) || errors.As(err, &syn) || strings.Contains(err.Error(), "invalid character") {
		t.Errorf("JSON error: %v", err)
	}
	// An opError passes through.
	first := classify(bg, "read", "p", respErr(404))
	if again := classify(bg, "other", "q", first); again != first {
		t.Errorf("reclassified: %v", again)
	}
}

func TestLoginError(t *testing.T) {
	bg := context.Background()
	cases := []struct {
		err   error
		class error
	}{
		{fmt.Errorf("unable to log in with app role auth: %w", respErr(400, "invalid role or secret ID")), secrets.ErrPermission},
		{respErr(403, "permission denied"), secrets.ErrPermission},
		{errors.New("unable to read service account token file"), secrets.ErrPermission},
		{respErr(503, "Vault is sealed"), secrets.ErrTransient},
		{&url.Error{Op: "Put", URL: "u", Err: errors.New("connection reset")}, secrets.ErrTransient},
	}
	for _, tc := range cases {
		if err := loginError(bg, tc.err); !errors.Is(err, tc.class) {
			t.Errorf("loginError(%v) = %v, want %v", tc.err, err, tc.class)
		}
	}
}

// TestKeysInErrorsAreBounded asks for 1 MiB keys and keys holding a newline,
// of a Vault that answers 404, of one that echoes the request's path in its
// error (as "no handler for route" does), and of none at all (a connection
// error quotes the URL): every error is short and on one line.
func TestKeysInErrorsAreBounded(t *testing.T) {
	notFound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
	}))
	defer notFound.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		msg, _ := json.Marshal(map[string][]string{"errors": {"no handler for route \"" + r.URL.Path + "\"\n\tmore"}})
		_, _ = w.Write(msg)
	}))
	defer echo.Close()

	long := strings.Repeat("k", 1<<20)
	keys := map[string]string{
		"1 MiB path":                "secret/" + long,
		"1 MiB path, no mount":      long + "/x",
		"1 MiB field":               "secret/x?field=" + long,
		"1 MiB query name":          "secret/x?" + long + "=1",
		"1 MiB bad path":            "secret/../" + long,
		"newline in path":           "secret/A\nB",
		"newline in field":          "secret/x?field=A%0AB",
		"newline in query name":     "secret/x?A%0AB=1",
		"newline in bad path":       "secret/../A\nB",
		"newline in malformed key":  "secret/x?A\n%zz",
		"64 KiB path, no 431 reply": "secret/" + strings.Repeat("k", 64<<10),
	}
	for _, addr := range []string{notFound.URL, echo.URL, deadAddress(t)} {
		for _, opts := range [][]Option{{WithMount("secret", 2), WithMaxRetries(0)}, {WithMaxRetries(0)}} {
			s, err := New(newClient(t, addr, "t"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			for name, key := range keys {
				_, err := s.Fetch(context.Background(), key)
				if err == nil {
					t.Errorf("%s: no error", name)
					continue
				}
				if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
					t.Errorf("%s from %s: message of %d bytes, or not on one line: %.300q", name, addr, len(msg), msg)
				}
			}
			s.Close()
		}
	}
	s, err := New(newClient(t, notFound.URL, "t"), WithMount(long+"//\n", 2))
	if err == nil {
		s.Close()
		t.Fatal("WithMount accepted an empty segment")
	}
	if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("WithMount: message of %d bytes, or not on one line: %.300q", len(msg), msg)
	}
}
