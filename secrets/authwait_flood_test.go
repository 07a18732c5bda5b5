package secrets_test

import (
	"context"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// Calls fail on a revoked credential and name (RefreshKeys) a second key
// whose first load fails. That key is fetched again at its backoff, not
// once per failed call, and its failed load is no newer credential: the
// calls wait.
func TestFailingUnloadedKeyNeitherFloodsNorSkipsTheWait(t *testing.T) {
	f := newFixture(t, secrets.WithAuthWait(5*time.Second))
	f.src.Set("db", "revoked")
	f.get("db")
	f.src.fail("optional", secrets.ErrPermission)
	tries := 0
	h := secrets.WrapTool(f.store, func(ctx context.Context, _, _ int) (int, int, error) {
		tries++
		secrets.ViewFrom(ctx, f.store).Get(ctx, "db")
		return 0, 0, &pgError{"28P01"}
	}, secrets.RefreshKeys("optional"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const calls = 50
	returned := 0
	for range calls {
		done := make(chan struct{})
		go func() { defer close(done); h(ctx, 0, 0) }()
		select {
		case <-done:
			returned++
		case <-func() chan struct{} {
			c := make(chan struct{})
			go func() {
				if waitBlockedIn("secrets.(*Store).awaitNewer", 1) {
					close(c)
				}
			}()
			return c
		}():
			cancel() // it waits, as it should: stop here
			<-done
			return
		}
	}
	t.Fatalf("%d calls failed on a revoked credential without waiting (%d handler runs) and cost %d fetches of the failing key (db: %d)",
		returned, tries, f.src.count("optional"), f.src.count("db"))
}
