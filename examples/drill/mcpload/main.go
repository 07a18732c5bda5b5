// Command mcpload is the rotation drill's load: an MCP client, built on the
// official MCP Go SDK, that calls the example server's db_whoami tool over
// streamable HTTP at a steady rate, plus a burst of concurrent calls every so
// often, until its standard input closes or it receives SIGTERM. It writes one
// JSON line for each call (examples/drill/internal/wire.Call) to standard
// output, and a summary line at the end.
//
// The bursts make the server's connection pool open connections beyond the
// one the steady load keeps busy; with the database role's
// idle_session_timeout those extra connections are closed between bursts, so
// every burst makes the pool log in again.
//
// A call counts as failed when the client returns an error or the tool
// returns an error result: the client retries nothing, as an MCP client
// calling a tool does not.
//
//	ROTOR_DRILL_TOKEN=... mcpload -url http://127.0.0.1:8080 [-rate 40] [-burst 8] [-burst-every 3s]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

type config struct {
	url        string
	token      string
	rate       int
	workers    int
	sessions   int
	burst      int
	burstEvery time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "the MCP server's streamable HTTP endpoint")
	flag.IntVar(&c.rate, "rate", 40, "steady tool calls a second")
	flag.IntVar(&c.workers, "workers", 8, "concurrent callers for the steady load")
	flag.IntVar(&c.sessions, "sessions", 2, "MCP sessions the calls are spread over")
	flag.IntVar(&c.burst, "burst", 8, "concurrent calls in each burst (0: none)")
	flag.DurationVar(&c.burstEvery, "burst-every", 3*time.Second, "time between bursts")
	flag.Parse()
	c.token = os.Getenv(wire.TokenEnv)
	if c.url == "" || c.rate <= 0 || c.workers <= 0 || c.sessions <= 0 || (c.burst > 0 && c.burstEvery <= 0) {
		fmt.Fprintln(os.Stderr, "mcpload: -url is required; -rate, -workers, -sessions and -burst-every must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := &recorder{w: bufio.NewWriter(os.Stdout)}
	if err := run(ctx, c, out); err != nil {
		fmt.Fprintln(os.Stderr, "mcpload:", err)
		os.Exit(1)
	}
}

// recorder writes records, one line each, from any goroutine.
type recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (r *recorder) write(v any) {
	b, err := json.Marshal(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		b = append(b, '\n')
		_, err = r.w.Write(b)
	}
	if err == nil {
		err = r.w.Flush()
	}
	if r.err == nil {
		r.err = err
	}
}

// run makes calls until ctx ends, then waits for the calls under way and
// writes the summary.
func run(ctx context.Context, c config, out *recorder) error {
	hc := &http.Client{Transport: &bearer{token: c.token, base: &http.Transport{MaxIdleConnsPerHost: c.workers + c.burst}}}
	defer hc.CloseIdleConnections()
	sessions := make([]*mcp.ClientSession, c.sessions)
	for i := range sessions {
		cs, err := connect(ctx, c.url, hc)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer cs.Close()
		sessions[i] = cs
	}
	var wg sync.WaitGroup
	work := make(chan struct{}, c.rate) // absorbs a stall of up to a second
	for w := range c.workers {
		cs := sessions[w%len(sessions)]
		wg.Go(func() {
			for range work {
				out.write(call(cs, false))
			}
		})
	}
	// Pace by elapsed time, so that a late tick is made up for.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var burst <-chan time.Time
	if c.burst > 0 {
		t := time.NewTicker(c.burstEvery)
		defer t.Stop()
		burst = t.C
	}
	start := time.Now()
	var sent, unsent int64
	bursts := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(c.rate))
			for ; sent < due; sent++ {
				select {
				case work <- struct{}{}:
				default:
					unsent++
				}
			}
		case <-burst:
			bursts++
			for i := range c.burst {
				cs := sessions[(bursts+i)%len(sessions)]
				wg.Go(func() { out.write(call(cs, true)) })
			}
		}
	}
	close(work)
	wg.Wait()
	out.write(wire.LoadSummary{Unsent: unsent})
	return out.err
}

// call makes one tool call and records it. The deadline only turns a hung
// call into a failure.
func call(cs *mcp.ClientSession, burst bool) wire.Call {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := wire.Call{Start: time.Now(), Burst: burst}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "db_whoami"})
	rec.End = time.Now()
	switch {
	case err != nil:
		rec.Err = err.Error()
	case res.IsError:
		rec.Err = toolError(res)
	default:
		var out struct {
			User         string    `json:"user"`
			PID          int32     `json:"pid"`
			SessionStart time.Time `json:"session_start"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &out); err != nil || out.User == "" {
			rec.Err = fmt.Sprintf("unexpected tool output %s", b)
			break
		}
		rec.User, rec.PID, rec.SessionStart = out.User, out.PID, out.SessionStart
	}
	if len(rec.Err) > 300 {
		rec.Err = rec.Err[:300] + "..."
	}
	return rec
}

func toolError(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return "tool error"
}

// connect opens an MCP session with the server at url.
func connect(ctx context.Context, url string, hc *http.Client) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "rotor-drill-load", Version: "v0"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
}

// bearer presents the token on every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
