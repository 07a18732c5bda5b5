package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// load calls the database tool at the configured rate until ctx ends.
func (d *drill) load(ctx context.Context, url string, r *Result) {
	httpClient := newHTTPClient(d.cfg.Workers)
	defer httpClient.CloseIdleConnections()
	sessions := make([]*mcp.ClientSession, 4)
	for i := range sessions {
		cs, err := connect(ctx, url, httpClient)
		if err != nil {
			r.FirstErr = "connect: " + err.Error()
			r.Failed++
			return
		}
		defer cs.Close()
		sessions[i] = cs
	}
	var calls, failed atomic.Int64
	var mu sync.Mutex
	work := make(chan struct{}, 2*d.cfg.Rate) // absorbs stalls of up to two seconds
	var wg sync.WaitGroup
	for w := 0; w < d.cfg.Workers; w++ {
		wg.Add(1)
		go func(cs *mcp.ClientSession) {
			defer wg.Done()
			for range work {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "db_whoami"})
				cancel()
				calls.Add(1)
				if err == nil && res.IsError {
					err = errors.New(toolError(res))
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if r.FirstErr == "" {
						r.FirstErr = err.Error()
					}
				} else if out, ok := res.StructuredContent.(map[string]any); ok {
					if u, ok := out["user"].(string); ok {
						r.Roles[u]++
					}
				}
				mu.Unlock()
			}
		}(sessions[w%len(sessions)])
	}
	// Pace by elapsed time, so that a late tick is made up for and the
	// average rate is the one asked for.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var sent, dropped int64
pace:
	for {
		select {
		case <-ctx.Done():
			break pace
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(d.cfg.Rate))
			for ; sent < due; sent++ {
				select {
				case work <- struct{}{}:
				default:
					dropped++ // more than two seconds behind
				}
			}
		}
	}
	elapsed := time.Since(start)
	close(work)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	r.Calls = calls.Load()
	r.Unsent = dropped
	r.Elapsed = elapsed
	r.Failed += failed.Load()
}

func toolError(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return "tool error"
}

// newHTTPClient returns an HTTP client that presents the drill's bearer
// token.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &bearer{token: drillToken, base: &http.Transport{MaxIdleConnsPerHost: conns}}}
}

// connect opens an MCP session with the server at url.
func connect(ctx context.Context, url string, hc *http.Client) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "drill", Version: "v0"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
