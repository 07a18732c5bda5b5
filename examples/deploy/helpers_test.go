package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rotorhq/rotor/internal/pgtest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// binaries holds the commands the files run, built once per test binary.
var binaries struct {
	mu   sync.Mutex
	dir  string
	made map[string]string
	errs map[string]error
}

// build builds the package pkg (an import path) with env and tags, once,
// and returns the binary's path, named as go build names it (the last
// element of the path).
func build(t *testing.T, pkg string, tags string, env ...string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	id := pkg + "|" + tags + "|" + strings.Join(env, " ")
	if p, ok := binaries.made[id]; ok {
		return p
	}
	if err, ok := binaries.errs[id]; ok {
		t.Fatal(err)
	}
	if binaries.dir == "" {
		d, err := os.MkdirTemp("", "rotor-deploy-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir, binaries.made, binaries.errs = d, map[string]string{}, map[string]error{}
	}
	out := filepath.Join(binaries.dir, strconv.Itoa(len(binaries.made)), filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctxT(t), "go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		binaries.errs[id] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		t.Fatal(binaries.errs[id])
	}
	binaries.made[id] = out
	return out
}

// db is a PostgreSQL server shared by the tests, started on first use and
// stopped by TestMain.
var db struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

func startDB(t *testing.T) *pgtest.Server {
	t.Helper()
	db.once.Do(func() { db.srv, db.err = pgtest.StartServer(context.Background()) })
	if db.err != nil {
		t.Fatalf("pgtest: %v", db.err)
	}
	return db.srv
}

// readYAML reads the documents of a YAML file as plain values. A node with
// a local tag, as CloudFormation's short forms (!Ref, !Sub, !GetAtt, ...)
// are, becomes a one-key map in the long form: {"Ref": ...},
// {"Fn::Sub": ...}.
func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v, err := plain(&n)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: a document that is not a mapping: %T", path, v)
		}
		docs = append(docs, m)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no document", path)
	}
	return docs
}

func plain(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return plain(n.Content[0])
	case yaml.AliasNode:
		return plain(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q twice", n.Content[i].Line, k)
			}
			val, err := plain(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		var l []any
		for _, c := range n.Content {
			val, err := plain(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!!") {
			if err := n.Decode(&v); err != nil {
				return nil, err
			}
		} else {
			v = n.Value
		}
	}
	if tag, ok := strings.CutPrefix(n.Tag, "!"); ok && !strings.HasPrefix(tag, "!") {
		name := "Fn::" + tag
		if tag == "Ref" || tag == "Condition" {
			name = tag
		}
		if tag == "GetAtt" {
			if s, ok := v.(string); ok {
				a, b, _ := strings.Cut(s, ".")
				v = []any{a, b}
			}
		}
		return map[string]any{name: v}, nil
	}
	return v, nil
}

// at walks v along path: map keys, and for lists an index.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping at %v", path, path[:i])
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d at %v", path, k, path[:i])
			}
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := at(t, v, path...).(string)
	if !ok {
		t.Fatalf("%v: not a string: %#v", path, at(t, v, path...))
	}
	return s
}

func list(t *testing.T, v any, path ...any) []any {
	t.Helper()
	l, ok := at(t, v, path...).([]any)
	if !ok {
		t.Fatalf("%v: not a list: %#v", path, at(t, v, path...))
	}
	return l
}

// object returns the document of kind and name.
func object(t *testing.T, docs []map[string]any, kind, name string) map[string]any {
	t.Helper()
	for _, d := range docs {
		if d["kind"] == kind && at(t, d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// flagValue returns the value of -name in args (-name=value or -name value),
// and whether it is there. For a repeated flag it returns the last.
func flagValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue
		}
		k, v, hasValue := strings.Cut(a, "=")
		if k != name {
			continue
		}
		if !hasValue && i+1 < len(args) {
			v = args[i+1]
		}
		val, found = v, true
	}
	return val, found
}

// setFlag returns args with -name's value replaced (or -name=value added).
func setFlag(args []string, name, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		k, _, hasValue := strings.Cut(a, "=")
		if a != args[i] && k == name {
			if !hasValue && i+1 < len(args) {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return append(out, "-"+name+"="+value)
}

func stringList(t *testing.T, v []any) []string {
	t.Helper()
	var out []string
	for _, x := range v {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("not a string: %#v", x)
		}
		out = append(out, s)
	}
	return out
}

// server is examples/mcpserver running as its own process.
type server struct {
	cmd       *exec.Cmd
	dir       string // its -secrets directory
	out       string // stdout up to the line that says it serves
	status    string // the status endpoint's URL it printed
	metrics   string // the metrics URL it printed, if any
	stderr    *lockedBuffer
	lines     chan string // its stderr, line by line
	waitErr   chan error
	reloadLog string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs the built server with args, where the listening
// addresses are moved to loopback ports of the system's choosing, -secrets
// to dir and -db to the test's PostgreSQL, and returns once it serves.
func startServer(t *testing.T, bin, dir, dbURL string, args []string) *server {
	t.Helper()
	args = setFlag(args, "secrets", dir)
	for _, f := range []string{"http", "status", "metrics"} {
		if _, ok := flagValue(args, f); ok {
			args = setFlag(args, f, "127.0.0.1:0")
		}
	}
	if _, ok := flagValue(args, "db"); ok {
		args = setFlag(args, "db", dbURL)
	}
	s := &server{dir: dir, stderr: &lockedBuffer{}, lines: make(chan string, 1024), waitErr: make(chan error, 1)}
	s.cmd = exec.Command(bin, args...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.stderr.Write([]byte(sc.Text() + "\n"))
			select {
			case s.lines <- sc.Text():
			default:
			}
		}
	}()
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "pid ") {
			break
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		<-errDone
		s.waitErr <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.waitErr
	})
	s.out = out.String()
	if m := regexp.MustCompile(`status at (http://\S+) `).FindStringSubmatch(s.out); m != nil {
		s.status = m[1]
	}
	if m := regexp.MustCompile(`metrics for Prometheus at (http://\S+)`).FindStringSubmatch(s.out); m != nil {
		s.metrics = m[1]
	}
	if !strings.HasPrefix(s.out[strings.LastIndex(strings.TrimSuffix(s.out, "\n"), "\n")+1:], "pid ") {
		_ = s.cmd.Process.Kill()
		t.Fatalf("%s %v did not start:\n%s\n%s", bin, args, s.out, s.stderr)
	}
	return s
}

// waitLog waits for a line of the server's stderr that holds want.
func (s *server) waitLog(t *testing.T, want string) string {
	t.Helper()
	ctx := ctxT(t)
	for {
		select {
		case l := <-s.lines:
			if strings.Contains(l, want) {
				return l
			}
		case err := <-s.waitErr:
			s.waitErr <- err
			t.Fatalf("the server exited (%v) before it logged %q:\n%s", err, want, s.stderr)
		case <-ctx.Done():
			t.Fatalf("the server did not log %q:\n%s", want, s.stderr)
		}
	}
}

// files returns the credential files the server's output names, by base
// name: where it reads the signing key, the API key and the database
// credential.
func (s *server) files() map[string]bool {
	out := map[string]bool{}
	re := regexp.MustCompile(regexp.QuoteMeta(s.dir) + `/([A-Za-z0-9._-]+)`)
	for _, m := range re.FindAllStringSubmatch(s.out, -1) {
		out[m[1]] = true
	}
	return out
}

// hostPort splits a URL's host and port.
func hostPort(t *testing.T, raw string) (host, port, path string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port(), u.Path
}

// splitCommand splits a command line as systemd's ExecStart and a shell do
// for simple cases: on blanks, with double quotes grouping.
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}
