package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
	"github.com/rotorhq/rotor/sources/memory"
)

// serverEnv, when set, makes this program the drill's MCP server instead of
// the drill: the drill starts itself again with it set, so that the server
// runs as a process of its own, as users run it, and receives its SIGHUP
// from outside. Its value is the server's configuration in JSON.
const serverEnv = "ROTOR_DRILL_SERVER"

// serverConfig is what the drill tells its server process.
type serverConfig struct {
	Kind        string        // rotorServer or baselineServer
	Dir         string        // the directory holding db.json
	DatabaseURL string        // without credentials
	TTL         time.Duration // the rotor Store's TTL
	Verbose     bool          // log the Store's events to stderr
}

// overlap is how long the drill keeps a replaced credential working: the
// window the rotor server declares with secrets.WithOverlap.
func overlap(ttl time.Duration) time.Duration { return 3*ttl + ttl/2 }

// serverProcess is the drill's handle on a running server process.
type serverProcess struct {
	URL   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	errs  *tail
}

// startServer starts the server as a process of its own and returns once it
// serves. Its log goes to log, if not nil.
func startServer(ctx context.Context, cfg serverConfig, log io.Writer) (*serverProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), serverEnv+"="+string(b))
	cmd.WaitDelay = 10 * time.Second
	p := &serverProcess{cmd: cmd, errs: &tail{}}
	cmd.Stderr = p.errs
	if log != nil {
		cmd.Stderr = io.MultiWriter(log, p.errs)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		p.stdin.Close()
		werr := cmd.Wait()
		return nil, fmt.Errorf("%s server did not start: %v (%v)%s", cfg.Kind, err, werr, p.errs.String())
	}
	p.URL = strings.TrimSpace(line)
	return p, nil
}

// signal sends sig to the server process.
func (p *serverProcess) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// stop asks the server to shut down (by closing its standard input) and
// waits for it; it reports a server that did not exit cleanly.
func (p *serverProcess) stop() error {
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("server process: %w%s", err, p.errs.String())
	}
	return nil
}

// tail keeps the last few kilobytes written to it, to explain a failure.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	const max = 4096
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > max {
		t.buf = t.buf[len(t.buf)-max:]
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return ""
	}
	return "; its last output:\n" + string(t.buf)
}

// serveMain is the server process's main: it serves until its standard input
// closes or it is interrupted, and returns the exit code.
func serveMain(cfgJSON string) int {
	var cfg serverConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "drill server:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := serve(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "drill server (%s): %v\n", cfg.Kind, err)
		return 1
	}
	return 0
}

// serve runs the example MCP server (examples/mcpserver/server) with the
// database tool, writes its URL and a newline to out once it listens, and
// serves until ctx ends.
func serve(ctx context.Context, cfg serverConfig, out, log io.Writer) error {
	var store *secrets.Store
	var credKey string
	switch cfg.Kind {
	case rotorServer:
		// The credential is a JSON file the Store watches and polls,
		// validated by logging in before a swap, and reloaded on SIGHUP.
		files, err := file.New(file.WithDir(cfg.Dir))
		if err != nil {
			return err
		}
		credKey = "file://" + filepath.Join(cfg.Dir, "db.json")
		logger := slog.New(slog.DiscardHandler)
		if cfg.Verbose {
			logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
		store, err = secrets.New(nil,
			secrets.WithSource("file", files),
			secrets.WithTTL(cfg.TTL),
			secrets.WithValidator(server.DBValidator(cfg.DatabaseURL), credKey),
			secrets.WithOverlap(overlap(cfg.TTL)),
			secrets.WithLogger(logger))
		if err != nil {
			return err
		}
		defer store.Close()
		stopSignals := secrets.ReloadOnSignal(ctx, store, syscall.SIGHUP)
		defer stopSignals()
		if _, err := store.Get(ctx, credKey); err != nil {
			return err
		}
	case baselineServer:
		// The baseline reads the credential once at start-up, as code
		// calling os.Getenv in main does; its Store never sees a change.
		// It receives the same SIGHUPs, and ignores them.
		signal.Ignore(syscall.SIGHUP)
		raw, err := os.ReadFile(filepath.Join(cfg.Dir, "db.json"))
		if err != nil {
			return err
		}
		once := memory.New()
		once.Set("db", string(raw))
		credKey = "db"
		if store, err = secrets.New(once, secrets.WithTTL(24*time.Hour)); err != nil {
			return err
		}
		defer store.Close()
	default:
		return fmt.Errorf("unknown server kind %q", cfg.Kind)
	}

	srv, err := server.New(server.Config{
		Store: store, DatabaseURL: cfg.DatabaseURL, DBCredKey: credKey, MaxConnLifetime: cfg.TTL,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.HTTPHandler(acceptDrillToken), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	fmt.Fprintf(out, "http://%s\n", l.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// The drill's bearer token: the drill is about the database credential, so
// the MCP endpoint accepts one fixed token (the example server itself verifies
// rotating JWTs; see examples/mcpserver).
const drillToken = "drill-token"

func acceptDrillToken(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	if token != drillToken {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{UserID: "drill", Expiration: time.Now().Add(time.Hour)}, nil
}
