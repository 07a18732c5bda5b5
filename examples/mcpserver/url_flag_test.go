package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadURLFlagIsAnError: -url is a flag; a value that is no URL a client
// sends (a space, a brace), or one under the metadata's well-known path,
// makes run return an error naming -url, before anything starts, never a
// panic (it once went into an http.ServeMux pattern).
func TestBadURLFlagIsAnError(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:8080/my mcp",
		"http://127.0.0.1:8080/mcp/{tenant",
		"http://127.0.0.1:8080/mcp/{x}/{x}",
		"http://127.0.0.1:8080/.well-known/oauth-protected-resource",
		"127.0.0.1:8080/mcp",
	} {
		t.Run(u, func(t *testing.T) {
			if err := checkURL(u); err == nil {
				t.Errorf("checkURL accepted %q", u)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("run panicked on -url %q: %v", u, r)
					}
				}()
				err = run(ctx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, url: u, demoDB: false},
					slog.New(slog.DiscardHandler), &syncBuffer{}, nil)
			}()
			if err == nil && !t.Failed() {
				t.Errorf("run accepted -url %q", u)
			} else if err != nil && !strings.Contains(err.Error(), "-url") {
				t.Errorf("the error does not name -url: %v", err)
			}
		})
	}
	if err := checkURL("https://mcp.example.com/my%20mcp?tenant=a"); err != nil {
		t.Errorf("checkURL refused a good URL: %v", err)
	}
}
