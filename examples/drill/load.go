package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A Window is the load between two rotations: window 0 from the start of the
// load to the first rotation, window n from the end of rotation n (its
// revocation included) to the start of the next one, or to the end of the
// load. Only calls that start and end within one window count in it.
type Window struct {
	// Role is the role whose current password is credential n (the
	// password the server started with, for window 0). Every session that
	// role has during the window logged in with credential n: the
	// rotations end the sessions that logged in with a replaced password.
	Role   string
	Calls  int64 // calls that completed
	Failed int64
	Used   int64 // calls that succeeded as Role, hence with credential n
}

// load makes tool calls through a real MCP client at a steady rate and
// counts them, in total and by window.
type load struct {
	url     string
	rate    int
	workers int

	mu       sync.Mutex
	current  int // the open window; -1 during a rotation
	windows  []Window
	calls    int64
	failed   int64
	firstErr string
	roles    map[string]int64 // successful calls by the role they ran as
	unsent   int64            // calls dropped because the server fell too far behind
	elapsed  time.Duration

	// progress receives, without blocking, after each call.
	progress chan struct{}
}

func newLoad(url string, rate, workers int, firstRole string) *load {
	return &load{
		url: url, rate: rate, workers: workers,
		windows:  []Window{{Role: firstRole}},
		roles:    map[string]int64{},
		progress: make(chan struct{}, 1),
	}
}

// closeWindow ends the open window: a rotation begins.
func (l *load) closeWindow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current = -1
}

// openWindow opens the next window, in which credential n belongs to role.
func (l *load) openWindow(role string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.windows = append(l.windows, Window{Role: role})
	l.current = len(l.windows) - 1
}

// window returns window n as it stands.
func (l *load) window(n int) Window {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.windows[n]
}

func (l *load) begin() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current
}

// end records a call that began in window w.
func (l *load) end(w int, user string, err error) {
	l.mu.Lock()
	l.calls++
	if err != nil {
		l.failed++
		if l.firstErr == "" {
			l.firstErr = err.Error()
		}
	} else {
		l.roles[user]++
	}
	if w >= 0 && w == l.current {
		win := &l.windows[w]
		win.Calls++
		switch {
		case err != nil:
			win.Failed++
		case user == win.Role:
			win.Used++
		}
	}
	l.mu.Unlock()
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

// result copies the counts into r.
func (l *load) result(r *Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Calls, r.Failed, r.FirstErr = l.calls, l.failed, l.firstErr
	r.Unsent, r.Elapsed = l.unsent, l.elapsed
	r.Roles = map[string]int64{}
	for k, v := range l.roles {
		r.Roles[k] = v
	}
	r.Windows = append([]Window(nil), l.windows...)
}

// run calls the database tool at the configured rate until ctx ends, then
// waits for the calls under way.
func (l *load) run(ctx context.Context) {
	httpClient := newHTTPClient(l.workers)
	defer httpClient.CloseIdleConnections()
	sessions := make([]*mcp.ClientSession, 4)
	for i := range sessions {
		cs, err := connect(ctx, l.url, httpClient)
		if err != nil {
			l.end(-1, "", errors.New("connect: "+err.Error()))
			return
		}
		defer cs.Close()
		sessions[i] = cs
	}
	work := make(chan struct{}, 2*l.rate) // absorbs stalls of up to two seconds
	var wg sync.WaitGroup
	for w := 0; w < l.workers; w++ {
		wg.Add(1)
		go func(cs *mcp.ClientSession) {
			defer wg.Done()
			for range work {
				win := l.begin()
				// The deadline only turns a hung call into a failure.
				cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "db_whoami"})
				cancel()
				user := ""
				if err == nil && res.IsError {
					err = errors.New(toolError(res))
				} else if err == nil {
					if out, ok := res.StructuredContent.(map[string]any); ok {
						user, _ = out["user"].(string)
					}
				}
				l.end(win, user, err)
			}
		}(sessions[w%len(sessions)])
	}
	// Pace by elapsed time, so that a late tick is made up for and the
	// average rate is the one asked for, as far as the machine allows.
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
			due := int64(now.Sub(start).Seconds() * float64(l.rate))
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
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsent, l.elapsed = dropped, elapsed
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
