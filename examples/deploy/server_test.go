package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/secrets"
)

// mcpserverPkg is the server the files deploy.
const mcpserverPkg = "github.com/rotorhq/rotor/examples/mcpserver"

// checked is what running the server with a file's flags showed.
type checked struct {
	files      map[string]bool // the credential files it reads, by name
	statusPath string          // where it serves its status document
	keys       map[string]bool // the keys of its status document, its -secrets directory written as DIR
	metrics    string          // a scrape of its metrics, if it serves them
}

// runServer runs the built server with args (a file's, its addresses and
// directory moved to the test's), on credentials of the test's own and
// its PostgreSQL, and checks what every deployment relies on: it starts
// with these flags, serves its status document with every credential
// loaded and no value in it, and reloads on SIGHUP.
func runServer(t *testing.T, args []string) checked {
	t.Helper()
	pg := startDB(t)
	bin := build(t, mcpserverPkg, "")
	role := fmt.Sprintf("deploy_%d", os.Getpid())
	password := "deploy-pw-Zq3xv8"
	conn, err := pgx.Connect(ctxT(t), pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctxT(t))
	_, _ = conn.Exec(ctxT(t), fmt.Sprintf("DROP ROLE IF EXISTS %s", role))
	if _, err := conn.Exec(ctxT(t), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	values := map[string]string{"db.json": fmt.Sprintf(`{"username":%q,"password":%q}`, role, password)}
	for _, name := range []string{"api_key", "jwt_signing_key"} {
		b, err := os.ReadFile(filepath.Join("..", "mcpserver", "defaults", name))
		if err != nil {
			t.Fatal(err)
		}
		values[name] = strings.TrimSpace(string(b))
	}
	for name, v := range values {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, bin, dir, fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", pg.Host, pg.Port), args)
	if s.status == "" {
		t.Fatalf("the server does not serve a status endpoint with %v:\n%s", args, s.out)
	}
	c := checked{files: s.files(), keys: map[string]bool{}}
	_, _, c.statusPath = hostPort(t, s.status)

	doc := status(t, s.status)
	before := map[string]string{}
	for _, k := range doc.Keys {
		if !k.Loaded {
			t.Errorf("%s is not loaded", k.Key)
		}
		c.keys[strings.Replace(k.Key, dir, "DIR", 1)] = true
		before[k.Key] = k.FetchedAt.String()
	}
	if s.metrics != "" {
		c.metrics = get(t, s.metrics)
	}
	for _, v := range values {
		if strings.Contains(c.metrics, v) || strings.Contains(fmt.Sprint(doc), v) {
			t.Fatal("a value appears in the status document or the metrics")
		}
	}

	// kill -HUP, as the SSM command and systemctl reload send it: every
	// key is read again.
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, "reloaded on signal")
	for _, k := range status(t, s.status).Keys {
		if k.FetchedAt.String() == before[k.Key] {
			t.Errorf("%s was not read again on SIGHUP", k.Key)
		}
	}
	return c
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

func status(t *testing.T, url string) secrets.StatusDocument {
	t.Helper()
	var doc secrets.StatusDocument
	if err := json.Unmarshal([]byte(get(t, url)), &doc); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return doc
}

// metricNames returns the rotor_ metric names a text mentions.
func metricNames(text string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\brotor_[a-z_]+[a-z]\b`).FindAllString(text, -1) {
		seen[m] = true
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
