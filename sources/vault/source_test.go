package vault

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// deadAddress returns the address of a loopback port that nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func newClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		t.Fatal(cfg.Error)
	}
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	return c
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	c := newClient(t, deadAddress(t), "t")
	for name, opt := range map[string]Option{
		"WithMount empty":     WithMount("/", 2),
		"WithMount version":   WithMount("secret", 3),
		"WithMount segments":  WithMount("a//b", 2),
		"WithAuth nil":        WithAuth(nil),
		"WithLogger nil":      WithLogger(nil),
		"WithTokenEvents nil": WithTokenEvents(nil),
		"WithMaxRetries":      WithMaxRetries(-1),
		"WithMaxRetryWait":    WithMaxRetryWait(0),
	} {
		if _, err := New(c, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The source works on a copy: the caller's client keeps its settings.
func TestNewLeavesClientAlone(t *testing.T) {
	c := newClient(t, deadAddress(t), "caller-token")
	c.SetMaxRetries(5)
	c.SetNamespace("team")
	s, err := New(c, WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c.MaxRetries() != 5 || c.Token() != "caller-token" {
		t.Fatalf("caller's client changed: retries %d", c.MaxRetries())
	}
	if s.base.MaxRetries() != 0 || s.base.Token() != "" || s.base.Namespace() != "team" {
		t.Fatalf("source's copy: retries %d, namespace %q", s.base.MaxRetries(), s.base.Namespace())
	}
	if s.token0 != "caller-token" {
		t.Fatal("the caller's token was not taken")
	}
}

// An unreachable Vault is transient, and the client's retries are bounded:
// one retry after at most 250ms, not two after 1–1.5s each.
func TestUnreachable(t *testing.T) {
	s, err := New(newClient(t, deadAddress(t), "t"), WithMount("secret", 2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = s.Fetch(context.Background(), "secret/mcp/db")
	if !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("Fetch from an unreachable Vault: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Fetch took %v; the client's retries are not bounded", d)
	}
	r := s.FetchIfChanged(context.Background(), secrets.Request{Key: "secret/mcp/db"})
	if !errors.Is(r.Err, secrets.ErrTransient) {
		t.Fatalf("FetchIfChanged from an unreachable Vault: %v", r.Err)
	}
}

func TestCanceledAndInvalid(t *testing.T) {
	s, err := New(newClient(t, deadAddress(t), "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Fetch(ctx, "secret/x"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if r := s.FetchIfChanged(ctx, secrets.Request{Key: "secret/x"}); !errors.Is(r.Err, context.Canceled) {
		t.Errorf("canceled FetchIfChanged: %v", r.Err)
	}
	if _, err := s.Fetch(context.Background(), "secret/../x"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("bad key: %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := New(newClient(t, deadAddress(t), "t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(context.Background(), "secret/x"); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Fetch after Close: %v", err)
	}
}
