// Package pgtest starts a real PostgreSQL server for tests: a new cluster in
// a temporary directory, listening on a loopback port, with scram-sha-256
// password authentication for every connection, so that a wrong password is
// refused as it would be in production.
//
// The server binaries come from Debian's postgresql package
// (/usr/lib/postgresql/N/bin) or from PATH. PostgreSQL refuses to run as
// root; when the tests do, the server runs as the "postgres" system user
// that the package creates.
//
// On Linux the server gets a parent-death signal: when the process that
// started it dies without calling Stop (SIGKILL, SIGQUIT, a panic), the
// kernel shuts the cluster down; its temporary directory stays behind.
// Elsewhere the cluster keeps running until stopped by hand.
package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SuperUser is the name of the cluster's superuser.
const SuperUser = "postgres"

// Server is a running PostgreSQL server.
type Server struct {
	Host     string // 127.0.0.1
	Port     int
	Password string // the superuser's password

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	Logf(format string, args ...any)
}

// Start initialises a cluster and starts a server, stopped at the end of the
// test. It fails the test if PostgreSQL is not installed.
func Start(t TB) *Server {
	t.Helper()
	s, err := start(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("pgtest: stop: %v", err)
		}
	})
	return s
}

// StartServer is Start for programs: the caller must call Stop.
func StartServer(ctx context.Context) (*Server, error) { return start(ctx) }

// BinDir returns the directory holding initdb and postgres.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found (install Debian's postgresql package)")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func start(ctx context.Context) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Password: "pgtest-superuser", dir: dir, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	sock := filepath.Join(dir, "sock")
	pwfile := filepath.Join(dir, "pwfile")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		for _, p := range []string{data, sock, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", SuperUser, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--no-sync", "--locale", "C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	s.cmd = exec.Command(filepath.Join(bin, "postgres"),
		"-D", data, "-k", sock, "-h", s.Host, "-p", strconv.Itoa(port),
		"-c", "password_encryption=scram-sha-256",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "log_min_messages=warning",
		"-c", "logging_collector=off")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	setParentDeathSignal(s.cmd.SysProcAttr)
	s.cmd.Dir = dir
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	ready := make(chan struct{})
	go s.readLog(stderr, ready)
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case <-ready:
	case <-s.done:
		return nil, fmt.Errorf("postgres exited at start: %s", s.Log())
	case <-timeout.C:
		s.Stop()
		return nil, fmt.Errorf("postgres not ready after 60s: %s", s.Log())
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	ok = true
	return s, nil
}

// readLog keeps the server's log and closes ready when the server says it
// accepts connections.
func (s *Server) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	closed := false
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		if s.log.Len() < 1<<20 {
			s.log.WriteString(line + "\n")
		}
		s.mu.Unlock()
		if !closed && strings.Contains(line, "ready to accept connections") {
			close(ready)
			closed = true
		}
	}
}

// Log returns what the server has logged.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// runAs returns the credential to run the server with: nil when the process
// is not root, the postgres user's otherwise.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns a connection URL for user with password on database db.
func (s *Server) URL(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", user, password, s.Host, s.Port, db)
}

// SuperURL returns the superuser's connection URL.
func (s *Server) SuperURL() string { return s.URL(SuperUser, s.Password, "postgres") }

// Stop shuts the server down (fast shutdown) and removes its files.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return os.RemoveAll(s.dir)
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	return os.RemoveAll(s.dir)
}
