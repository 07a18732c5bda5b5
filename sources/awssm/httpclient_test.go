package awssm_test

import (
	"fmt"
	"testing"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestConcurrentCallsKeepTheirConnections guards the work-around of ownBody:
// without it, concurrent calls on new connections sometimes lose their
// connection while the response is being read (net/http closes it over a
// spurious io.EOF from the SDK's request body), which shows here as an
// error, since the SDK may not retry.
func TestConcurrentCallsKeepTheirConnections(t *testing.T) {
	for i := 0; i < 100; i++ {
		func() {
			srv := smtest.New()
			defer srv.Close()
			src, err := awssm.New(srv.Client(), awssm.WithMaxAttempts(1))
			if err != nil {
				t.Fatal(err)
			}
			reqs := make([]secrets.Request, 3*awssm.MaxBatchSize)
			for n := range reqs {
				key := fmt.Sprintf("conn-%02d", n)
				id := srv.Put(key, "v")
				reqs[n] = secrets.Request{Key: key, Known: secrets.Versions{Current: secrets.NewSecretString(key, id, "v")}}
			}
			for n, r := range src.FetchMany(ctxT(t), reqs) {
				if r.Err != nil || !r.Unchanged {
					t.Fatalf("iteration %d, result %d: %v", i, n, r.Err)
				}
			}
			if c := srv.TotalCalls(); c != 3 {
				t.Fatalf("iteration %d: %d calls, want 3", i, c)
			}
		}()
	}
}
