package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scrape GETs a Prometheus endpoint and returns its body.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

// TestMetricsScraped runs the server with -metrics, sends it a token it
// refuses, and scrapes /metrics as Prometheus would:
// the Store's and the Verifier's instruments are there, under their
// Prometheus names, and no secret's value is.
func TestMetricsScraped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, metricsAddr: "127.0.0.1:0"},
			slog.New(slog.DiscardHandler), out, ready)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}()
	var endpoint string
	select {
	case endpoint = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`metrics for Prometheus at (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the output does not say where the metrics are:\n%s", out)
	}

	// A request with a malformed token: the Verifier refuses it.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a malformed token got %s", resp.Status)
	}

	body := scrape(t, m[1])
	for _, want := range []string{
		"# TYPE rotor_secrets_refreshes_total counter",
		`rotor_secrets_refreshes_total{otel_scope_name="github.com/rotorhq/rotor/secrets/otelmetrics"`,
		"# TYPE rotor_secrets_age_seconds gauge",
		"# TYPE rotor_secrets_consecutive_failures gauge",
		"# TYPE rotor_jwtkeys_verifications_total counter",
		`rotor_jwtkeys_verifications_total{error_type="malformed"`,
		`rotor_jwtkeys_verifications_total{otel_scope_name="github.com/rotorhq/rotor/secrets/otelmetrics",otel_scope_schema_url="",otel_scope_version="",rotor_jwt_key_version="previous"`,
		`rotor_secret_source="file"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, body)
		}
	}
	// The embedded demo values never appear: only names, classes, counts.
	for _, name := range []string{"api_key", "jwt_signing_key"} {
		v, err := defaults.ReadFile("defaults/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if leak := strings.TrimSpace(string(v)); strings.Contains(body, leak) {
			t.Errorf("the scrape holds the value of %s", name)
		}
	}
}
