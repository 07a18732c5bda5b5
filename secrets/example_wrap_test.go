package secrets_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// upstream is an HTTP API that accepts one key at a time, as a service does
// once a rotation has revoked the old key.
type upstream struct {
	mu  sync.Mutex
	key string
}

func (u *upstream) rotate(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.key = key
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	ok := r.Header.Get("Authorization") == "Bearer "+u.key
	u.mu.Unlock()
	if !ok {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	fmt.Fprint(w, "hello")
}

// A tool handler wrapped by WrapTool: its credentials come from one View of
// the Store, and when the API answers 401 because the key rotated, the
// wrapper refreshes the key and runs the handler once more. The handler has
// the shape of the MCP Go SDK's typed tool handler; in a server,
// mcp.AddTool(server, tool, secrets.WrapTool(store, callAPI)), with
// *mcp.CallToolRequest and *mcp.CallToolResult in place of the types here.
func ExampleWrapTool() {
	api := &upstream{key: "key-1"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	backend := memory.New()
	backend.Set("api-key", "key-1")
	store, err := secrets.New(backend)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	type request struct{}
	type result struct{ Text string }
	type input struct{ Path string }
	callAPI := func(ctx context.Context, _ *request, in input) (*result, string, error) {
		key, err := secrets.ViewFrom(ctx, store).Get(ctx, "api-key")
		if err != nil {
			return nil, "", err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+in.Path, nil)
		req.Header.Set("Authorization", "Bearer "+key.Reveal())
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		if err := secrets.CheckResponse(resp); err != nil {
			return nil, "", err // a *StatusError: 401 counts as an authentication failure
		}
		body, _ := io.ReadAll(resp.Body)
		return &result{Text: string(body)}, key.Version(), nil
	}
	tool := secrets.WrapTool(store, callAPI)
	ctx := context.Background()
	if _, err := store.Get(ctx, "api-key"); err != nil { // loaded and cached
		panic(err)
	}

	// The key rotates: the API takes the new one only, and the backend
	// holds it, but the Store has not polled it yet.
	api.rotate("key-2")
	backend.Set("api-key", "key-2")

	res, version, err := tool(ctx, &request{}, input{Path: "/hello"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Text, "with key version", version)
	// Output:
	// hello with key version 2
}

// sqlStateError stands in for *pgconn.PgError: an error with a SQLSTATE.
type sqlStateError struct{ code string }

func (e *sqlStateError) Error() string {
	return "password authentication failed (SQLSTATE " + e.code + ")"
}
func (e *sqlStateError) SQLState() string { return e.code }

// Call runs a function that logs in with a credential from the Store. When
// the database refuses the password (SQLSTATE 28P01) because it was rotated
// after the Store last read it, Call refreshes the credential and runs the
// function once more.
func ExampleCall() {
	backend := memory.New()
	backend.Set("db", `{"username":"app","password":"first"}`)
	store, err := secrets.New(backend)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()
	if _, err := store.Get(ctx, "db#password"); err != nil { // loaded and cached
		panic(err)
	}

	// The database's password changes, and the backend's with it.
	dbPassword := "second"
	backend.Set("db", `{"username":"app","password":"second"}`)

	tries := 0
	err = secrets.Call(ctx, store, func(ctx context.Context) error {
		tries++
		pw, err := secrets.ViewFrom(ctx, store).Get(ctx, "db#password")
		if err != nil {
			return err
		}
		if pw.Reveal() != dbPassword {
			return &sqlStateError{code: "28P01"}
		}
		return nil
	})
	fmt.Println("error:", err, "after", tries, "tries")
	// Output:
	// error: <nil> after 2 tries
}

// A Transport puts the credential on every request, and after a 401 sends
// the request once more with the Store's newer credential, if there is one.
func ExampleNewTransport() {
	api := &upstream{key: "key-1"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	backend := memory.New()
	backend.Set("api-key", "key-1")
	store, err := secrets.New(backend)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	client := &http.Client{Transport: secrets.NewTransport(store, "api-key",
		secrets.WithBase(srv.Client().Transport))} // default: http.DefaultTransport
	get := func() {
		resp, err := client.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	get()

	// The key rotates: the API takes the new one only.
	api.rotate("key-2")
	backend.Set("api-key", "key-2")
	get()
	// Output:
	// 200 hello
	// 200 hello
}
