package secrets_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// contentSrc versions values by content, as the file and env sources do, so
// a rollback brings back an earlier version id.
type contentSrc struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *contentSrc) set(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
}

func (c *contentSrc) Fetch(_ context.Context, k string) (secrets.Versions, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return secrets.Versions{}, secrets.ErrNotFound
	}
	return secrets.Versions{Current: secrets.NewSecretString(k, secrets.ContentVersion([]byte(v)), v)}, nil
}

// TestNewerUnchangedFetchIsNotLost: an older fetch's rotation is applied
// after a newer fetch saw the value rolled back. The Store must end up
// serving what the source holds, not the older fetch's value.
func TestNewerUnchangedFetchIsNotLost(t *testing.T) {
	src := &contentSrc{m: map[string]string{"k": "v1", "k2": "a"}}
	gateA, gateB := make(chan struct{}), make(chan struct{})
	inA, inB := make(chan struct{}), make(chan struct{})
	val := func(ctx context.Context, key string, c secrets.Versions) error {
		switch {
		case key == "k" && c.Current.Reveal() == "v2":
			select {
			case <-inA:
			default:
				close(inA)
				<-gateA
			}
		case key == "k2" && c.Current.Reveal() == "b":
			close(inB)
			<-gateB
		}
		return nil
	}
	st, err := secrets.New(src, secrets.WithValidator(val))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Get(ctx, "k")
	st.Get(ctx, "k2")
	sub := st.Subscribe()
	defer sub.Close()

	src.set("k", "v2")
	doneA := make(chan error, 1)
	go func() { doneA <- st.Refresh(ctx, "k") }() // fetches v2; its validator holds
	<-inA
	src.set("k", "v1") // rolled back
	src.set("k2", "b")
	doneB := make(chan error, 1)
	go func() { doneB <- st.Refresh(ctx, "k", "k2") }() // sees v1 for k; k2's validator holds
	<-inB
	close(gateA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	close(gateB)
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	// The newer fetch's verdict was reached against v1; v2 has been
	// served since, so the key is polled again and the Store converges on
	// the source.
	for {
		if got, _ := st.Get(ctx, "k"); got.Reveal() == "v1" {
			break
		}
		if _, err := sub.Next(ctx); err != nil {
			got, _ := st.Get(ctx, "k")
			t.Fatalf("the Store kept serving %q while the source holds v1", got.Reveal())
		}
	}
}

// TestOverlappingFetchesAnnounceOnce: two fetches that see the same rotation
// announce it once.
func TestOverlappingFetchesAnnounceOnce(t *testing.T) {
	src := &contentSrc{m: map[string]string{"k": "v1", "k2": "a"}}
	gates := []chan struct{}{make(chan struct{}), make(chan struct{})}
	entered := make(chan struct{}, 2)
	var mu sync.Mutex
	n := 0
	val := func(ctx context.Context, key string, c secrets.Versions) error {
		if key == "k" {
			mu.Lock()
			g := gates[n]
			n++
			mu.Unlock()
			entered <- struct{}{}
			<-g
		}
		return nil
	}
	st, err := secrets.New(src, secrets.WithValidator(val))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.Get(ctx, "k")
	st.Get(ctx, "k2")
	sub := st.Subscribe()
	defer sub.Close()
	src.set("k", "v2")
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- st.Refresh(ctx, "k") }()
	<-entered
	go func() { doneB <- st.Refresh(ctx, "k", "k2") }()
	<-entered
	close(gates[0])
	<-doneA
	first := sub.Changes()
	close(gates[1])
	<-doneB
	if second := sub.Changes(); len(first) != 1 || len(second) != 0 {
		t.Fatalf("changes: first %+v, then %+v; want one notice", first, second)
	}
}
