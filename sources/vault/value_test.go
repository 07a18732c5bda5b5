package vault

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// decode decodes JSON as the api package does, numbers as json.Number.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValueOf(t *testing.T) {
	data := decode(t, `{"user":"app","password":"p<&>w","port":5432,"big":12345678901234567890,
		"ratio":0.10,"on":true,"none":null,"tls":{"key":"k","ca":["a","b"]}}`)
	whole, ok, err := valueOf(data, "")
	if err != nil || !ok {
		t.Fatalf("whole value: %v %v", ok, err)
	}
	want := `{"big":12345678901234567890,"none":null,"on":true,"password":"p<&>w","port":5432,"ratio":0.10,"tls":{"ca":["a","b"],"key":"k"},"user":"app"}`
	if string(whole) != want {
		t.Fatalf("whole value:\n got %s\nwant %s", whole, want)
	}
	fields := map[string]string{
		"password": "p<&>w",
		"port":     "5432",
		"big":      "12345678901234567890",
		"ratio":    "0.10",
		"on":       "true",
		"none":     "null",
		"tls":      `{"ca":["a","b"],"key":"k"}`,
	}
	for f, want := range fields {
		got, ok, err := valueOf(data, f)
		if err != nil || !ok || string(got) != want {
			t.Errorf("field %q = %q, %v, %v; want %q", f, got, ok, err, want)
		}
	}
	if _, ok, err := valueOf(data, "missing"); ok || err != nil {
		t.Errorf("missing field: ok %v err %v", ok, err)
	}
	if got, _, _ := valueOf(map[string]any{}, ""); string(got) != "{}" {
		t.Errorf("empty secret = %q, want {}", got)
	}
}

func TestMetadata(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour).Format(time.RFC3339Nano)
	future := now.Add(time.Hour).Format(time.RFC3339Nano)
	md := decode(t, `{"current_version":6,"oldest_version":1,"versions":{
		"1":{"deletion_time":"","destroyed":false},
		"2":{"deletion_time":"`+past+`","destroyed":false},
		"3":{"deletion_time":"","destroyed":true},
		"4":{"deletion_time":"`+future+`","destroyed":false},
		"5":{"deletion_time":"`+past+`","destroyed":false},
		"6":{"deletion_time":"","destroyed":false}}}`)
	m, ok := parseMetadata(md)
	if !ok || m.current != 6 {
		t.Fatalf("parseMetadata: %+v %v", m, ok)
	}
	live := m.live(6, now)
	if len(live) != 2 || live[0] != 4 || live[1] != 1 {
		t.Fatalf("live below 6 = %v, want [4 1] (5 and 2 deleted, 3 destroyed, 4 only scheduled)", live)
	}
	if !m.versions[5].deleted(now) || m.versions[4].deleted(now) || m.versions[6].deleted(now) {
		t.Fatal("deleted() disagrees with the deletion times")
	}
	if _, ok := parseMetadata(map[string]any{"versions": map[string]any{}}); ok {
		t.Fatal("metadata without current_version parsed")
	}
}
