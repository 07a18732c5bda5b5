package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// TestStatusEndpoint runs the server with -status and reads /status as a
// readiness probe and the rotator do: 200, a status document naming the
// credential files by their file:// keys with the versions served, and no
// value.
func TestStatusEndpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, statusAddr: "127.0.0.1:0"},
			slog.New(slog.DiscardHandler), out, ready)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`status at (http://\S+` + statusPath + `) `).FindStringSubmatch(out.String())
	d := regexp.MustCompile(`edit the files in (\S+), or send SIGHUP`).FindStringSubmatch(out.String())
	if m == nil || d == nil {
		t.Fatalf("the output does not say where the status and the files are:\n%s", out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", m[1], resp.Status, body)
	}
	var doc secrets.StatusDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	served := map[string]string{}
	for _, k := range doc.Keys {
		if k.Loaded {
			served[k.Key] = k.Version
		}
	}
	// The signing key is loaded at start-up; the API key at the first call.
	if served["file://"+d[1]+"/jwt_signing_key"] == "" {
		t.Errorf("the document does not serve the signing key: %s", body)
	}
	for _, name := range []string{"jwt_signing_key", "api_key"} {
		value, err := defaults.ReadFile("defaults/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.TrimSpace(string(value)); strings.Contains(string(body), v) {
			t.Fatalf("the status document holds the value of %s", name)
		}
	}
}
