package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The drill's programs, built by Build into one directory.
const (
	serverBin  = "mcpserver"
	loadBin    = "mcpload"
	rotatorBin = "rotate"  // the manual rows' rotator (examples/drill/rotate)
	agentBin   = "rotator" // the agent rows' rotator (examples/rotator)
)

// Build builds the example server, the load client and both rotators into
// dir with the go command, as a user builds them: no race detector, nothing
// of the drill's own process inside them.
func Build(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/rotorhq/rotor/examples/mcpserver",
		"github.com/rotorhq/rotor/examples/drill/mcpload",
		"github.com/rotorhq/rotor/examples/drill/rotate",
		"github.com/rotorhq/rotor/examples/rotator")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	for _, b := range []string{serverBin, loadBin, rotatorBin, agentBin} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	return nil
}

// proc is a running program of the drill's.
type proc struct {
	name string
	cmd  *exec.Cmd
	errs *tail
	done chan struct{}
	err  error // set before done closes
}

// startProc starts cmd, whose standard output the caller has set up. Its
// standard error is kept (the last few kilobytes) and copied to log when log
// is not nil; stdin, when not nil, is set to a pipe to its standard input.
func startProc(name string, cmd *exec.Cmd, log io.Writer, stdin *io.WriteCloser) (*proc, error) {
	p := &proc{name: name, cmd: cmd, errs: &tail{}, done: make(chan struct{})}
	cmd.Stderr = p.errs
	if log != nil {
		cmd.Stderr = io.MultiWriter(p.errs, &prefixWriter{prefix: name + ": ", w: log})
	}
	cmd.WaitDelay = 10 * time.Second
	if stdin != nil {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		*stdin = w
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		defer close(p.done)
		if err := cmd.Wait(); err != nil {
			p.err = fmt.Errorf("%s: %w%s", name, err, p.errs)
		}
	}()
	return p, nil
}

// wait waits for the program to exit and reports how it did.
func (p *proc) wait() error {
	<-p.done
	return p.err
}

// terminate sends SIGTERM, as a supervisor stopping a service does, and waits.
func (p *proc) terminate() error {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.wait()
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

// String returns what was kept, introduced for an error message.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return ""
	}
	return "; its last output:\n" + string(t.buf)
}

// prefixWriter writes to w, each write prefixed (programs write whole lines).
type prefixWriter struct {
	prefix string
	mu     sync.Mutex
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
