package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestConsumerURLNotShownWithCredentials: a -consumer or -consumer-dns URL
// that is refused is named without its user information and query, which
// may hold a password or a token.
func TestConsumerURLNotShownWithCredentials(t *testing.T) {
	base := []string{"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s"}
	for name, extra := range map[string][]string{
		"scheme misspelled": {"-consumer", "htp://ops:hunter2@10.0.0.5/status?token=sekrit"},
		"no host":           {"-consumer", "http:///status?token=sekrit"},
		"bad escape":        {"-consumer", "http://ops:hunter2@10.0.0.5/%zz?token=sekrit"},
		"no scheme":         {"-consumer-dns", "ops:hunter2@status:9090?token=sekrit"},
	} {
		var out bytes.Buffer
		code := run(ctxT(t), append(append([]string{}, base...), extra...), func(string) string { return "" }, &out, &out)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d", name, code, exitUsage)
		}
		if !strings.Contains(out.String(), extra[0]+" takes an absolute http or https URL") {
			t.Errorf("%s: the message does not name the flag: %s", name, out.String())
		}
		for _, leak := range []string{"hunter2", "sekrit"} {
			if strings.Contains(out.String(), leak) {
				t.Errorf("%s: the message holds %q: %s", name, leak, out.String())
			}
		}
	}
}

// TestConsumerOptionsWithoutConsumers: -consumer-key or -consumer-version
// without a server to ask is refused, rather than rotating with no
// consumer check at all.
func TestConsumerOptionsWithoutConsumers(t *testing.T) {
	base := []string{"-secrets", t.TempDir(), "-db", "postgres://127.0.0.1:1/y?connect_timeout=1", "-ttl", "1s"}
	for name, extra := range map[string][]string{
		"key":     {"-consumer-key", "file:///run/secrets/db.json"},
		"version": {"-consumer-version", "content"},
		"empty":   {"-consumer", ""},
	} {
		var out bytes.Buffer
		code := run(ctxT(t), append(append([]string{}, base...), extra...), func(string) string { return "" }, &out, &out)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d:\n%s", name, code, exitUsage, out.String())
		}
	}
}
