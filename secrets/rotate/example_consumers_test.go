package rotate_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// The agent revokes the old API key only once the server reading it serves
// the new one, as the server's status endpoint reports.
func ExampleWithConsumers() {
	src := memory.New()
	src.Set("api-key", "first-key")
	downstream := &apiKeys{accepted: "first-key"}

	// A server reads the key through a Store of its own, under its own
	// name for it, and serves the Store's status endpoint.
	server, _ := secrets.New(nil, secrets.WithSource("mem", src), secrets.WithTTL(time.Hour))
	defer server.Close()
	_, _ = server.Get(context.Background(), "mem://api-key")
	status := httptest.NewServer(server.StatusHandler())
	defer status.Close()

	agent, err := rotate.New(src, downstream, time.Millisecond,
		rotate.WithLogger(quiet()), rotate.WithPollInterval(time.Millisecond),
		rotate.WithOverlapDeadline(time.Minute),
		rotate.WithConsumers(rotate.Consumers{
			Endpoints: rotate.StaticEndpoints(status.URL + "/status"),
			Key:       func(key string) string { return "mem://" + key },
		}),
		// The server learns of the new key when told (a SIGHUP, a webhook).
		rotate.WithNotify(func(ctx context.Context, e rotate.Event) {
			if e.Kind == rotate.EventPromoted {
				_ = server.Refresh(ctx)
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := agent.Rotate(context.Background(), "api-key")
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := server.Status("mem://api-key")
	fmt.Println("the server serves the new version:", st.Version == rep.To)
	// Output:
	// the server serves the new version: true
}
