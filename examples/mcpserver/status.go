package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// statusPath is where -status serves the Store's status document.
const statusPath = "/status"

// startStatus serves store's status endpoint (secrets.Store.StatusHandler)
// on addr at /status, the -status flag, and says where on out: the version
// id of every credential served, when it was fetched and the class of its
// last failure, never a value; 503 while one cannot be served, so a
// readiness probe can use it, and the rotation agent's -consumer reads it.
// With addr "" it serves nothing. The returned function stops serving.
func startStatus(addr string, store *secrets.Store, out io.Writer) (func() error, error) {
	if addr == "" {
		return func() error { return nil }, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-status: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(statusPath, store.StatusHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	fmt.Fprintf(out, "status at http://%s%s (key names and version ids: keep the address to operators)\n", l.Addr(), statusPath)
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := hs.Shutdown(ctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}
