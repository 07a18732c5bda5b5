package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// statusServer is a server reading db.json from dir as examples/mcpserver
// does (the file source, with WithTrimNewline, watching the directory) and
// serving its Store's status endpoint. Its key is "file://db.json", the
// same in every such server whatever its directory, as a mount path is the
// same in every pod.
type statusServer struct {
	dir   string
	store *secrets.Store
	srv   *httptest.Server
}

const consumerKey = "file://db.json"

func newStatusServer(t *testing.T, dir string) *statusServer {
	t.Helper()
	files, err := file.New(file.WithDir(dir), file.WithTrimNewline())
	if err != nil {
		t.Fatal(err)
	}
	store, err := secrets.New(nil, secrets.WithSource("file", files), secrets.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctxT(t), consumerKey); err != nil {
		t.Fatal(err)
	}
	s := &statusServer{dir: dir, store: store, srv: httptest.NewServer(store.StatusHandler())}
	t.Cleanup(func() {
		s.srv.Close()
		store.Close()
	})
	return s
}

func (s *statusServer) url() string { return s.srv.URL + "/status" }

func (s *statusServer) version() string {
	st, _ := s.store.Status(consumerKey)
	return st.Version
}

// copyFile writes src's content to dst atomically, as a Secret volume's
// ..data swap or a Vault Agent template does.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// TestRevokesOnceEveryConsumerSwitched: one server reads the rotated file
// itself and switches at once; another reads a copy, which the test updates
// only once the rotator has said that it waits for that server. The
// rotator finishes after that, and not at its deadline.
func TestRevokesOnceEveryConsumerSwitched(t *testing.T) {
	srv := startDB(t)
	dir, first := setup(t, srv, "consumers_app")
	copyDir := t.TempDir()
	copyFile(t, filepath.Join(dir, "db.json"), filepath.Join(copyDir, "db.json"))
	same, later := newStatusServer(t, dir), newStatusServer(t, copyDir)

	args := append(baseArgs(srv, dir), "-consumer", same.url(), "-consumer", later.url(),
		"-consumer-key", consumerKey, "-overlap-deadline", "2m")
	cmd := rotator(t, nil, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	copied := false
	lines := bufio.NewScanner(stderr)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		l := lines.Text()
		out.WriteString(l + "\n")
		if !copied && strings.Contains(l, "rotation waits for consumers") {
			if !strings.Contains(l, later.srv.URL) || !strings.Contains(l, "still serves version") || strings.Contains(l, same.srv.URL) {
				t.Errorf("the rotator waits, but not for the server reading the copy alone: %s", l)
			}
			copyFile(t, filepath.Join(dir, "db.json"), filepath.Join(copyDir, "db.json"))
			copied = true
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	_ = cmd.Wait()
	log := out.String()
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	if !copied {
		t.Fatalf("the rotator never waited for the server reading the copy:\n%s", log)
	}
	if strings.Contains(log, "deadline passed") {
		t.Fatalf("the rotator revoked at its deadline:\n%s", log)
	}
	cur := agree(t, srv, dir, first)
	noPassword(t, log+stdout.String(), first, cur)
	if same.version() != later.version() || same.version() == "" {
		t.Fatalf("the servers serve %s and %s", same.version(), later.version())
	}
}

// TestRevokesAtDeadlineWithAConsumerBehind: a server that never switches
// and one that is down keep the rotator waiting until -overlap-deadline,
// after which it revokes, exits 0 and names both, and why, in a warning.
// The server that switches is named through -consumer-dns.
func TestRevokesAtDeadlineWithAConsumerBehind(t *testing.T) {
	srv := startDB(t)
	dir, first := setup(t, srv, "deadline_app")
	copyDir := t.TempDir()
	copyFile(t, filepath.Join(dir, "db.json"), filepath.Join(copyDir, "db.json"))
	same, stuck := newStatusServer(t, dir), newStatusServer(t, copyDir)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	args := append(baseArgs(srv, dir), "-consumer-dns", same.url(), "-consumer", stuck.url(), "-consumer", down.URL+"/status",
		"-consumer-key", consumerKey, "-overlap-deadline", "2s")
	code, log := runRotator(t, nil, args...)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	var warning string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "deadline passed with consumers") {
			warning = l
		}
	}
	for _, want := range []string{stuck.srv.URL, "still serves version", down.URL, "unreachable", "waiting=2"} {
		if !strings.Contains(warning, want) {
			t.Errorf("the deadline warning does not say %q: %s", want, warning)
		}
	}
	if strings.Contains(warning, same.srv.URL) {
		t.Errorf("the warning names the server that switched: %s", warning)
	}
	cur := agree(t, srv, dir, first)
	noPassword(t, log, first, cur)
}

// TestConsumerFlags: the consumer flags are checked before anything is done.
func TestConsumerFlags(t *testing.T) {
	base := []string{"-secrets", t.TempDir(), "-db", "postgres://x/y", "-ttl", "1s"}
	for name, extra := range map[string][]string{
		"relative consumer":    {"-consumer", "10.0.0.5:9090/status"},
		"ftp consumer":         {"-consumer", "ftp://10.0.0.5/status"},
		"dns without a scheme": {"-consumer-dns", "mcpserver-status:9090"},
		"unknown version mode": {"-consumer", "http://10.0.0.5:9090/status", "-consumer-version", "hash"},
		"empty field":          {"-consumer", "http://10.0.0.5:9090/status", "-consumer-version", "content:"},
	} {
		var out bytes.Buffer
		if code := run(ctxT(t), append(slices.Clone(base), extra...), func(string) string { return "" }, &out, &out); code != exitUsage {
			t.Errorf("%s: exit %d, want %d:\n%s", name, code, exitUsage, out.String())
		}
	}
	for name, args := range map[string][]string{
		"vault field":  {"-vault", "secret/mcp/server?field=db.json", "-db", "postgres://x/y", "-ttl", "1s"},
		"all consumer": append(slices.Clone(base), "-consumer", "http://10.0.0.5:9090/status", "-consumer-dns", "https://status.example:9090/status", "-consumer-version", "content:password", "-consumer-key", "file:///run/secrets/db.json"),
	} {
		if _, err := parse(args, io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"secret/mcp/server?field=", "secret/mcp/server?other=x", "secret/mcp/server?field=a&field=b", "secret/mcp/server#password"} {
		if _, err := parse([]string{"-vault", bad, "-db", "postgres://x/y", "-ttl", "1s"}, io.Discard); err == nil {
			t.Errorf("-vault %s was accepted", bad)
		}
	}
}
