// Package secrets serves credentials that rotate: a Store reads them from a
// backend, keeps them current in the background, and hands them out without a
// lock, so a long-running server picks up a rotated database password, API
// key or signing key without a restart and without a failed request.
//
// # Reading
//
// Create a Store over a Source and read at the point of use:
//
//	store, err := secrets.New(src, secrets.WithTTL(time.Minute))
//	...
//	pw, err := store.Get(ctx, "prod/db#password")
//	conn := dial(user, pw.Reveal())
//
// A key names a value at the Store's own source, or, as a reference
// (scheme://path#field), a value at a source registered with WithSource:
// "file:///run/secrets/db", "env://API_KEY", "awssm://prod/db#password". The
// text after '#' selects a field of a JSON value; all the fields of one value
// share one fetch. Getenv resolves references held in environment variables,
// as a drop-in for os.Getenv.
//
// # Keeping current
//
// A key is fetched on its first Get; concurrent first reads share one fetch.
// From then on the Store polls the source every TTL (less a random jitter) in
// the background, and reads never wait for it. Sources that can push changes
// (Watcher), tell cheaply that nothing changed (ChangeDetector) or fetch many
// keys in one call (BatchFetcher) are used that way. A source may also ask to
// be read again by a given time (Versions.RefreshBy: a lease to renew, a
// rotation scheduled at the backend), which the Store honours before the TTL.
//
// When a refresh fails the Store keeps serving the last good value, records
// the error in the key's Status and retries with exponential backoff. By
// default the last good value is served for as long as the backend is down;
// WithMaxStale sets a limit past which Get fails closed with ErrStale. The
// Store serves no empty value: a source that returns one has failed.
//
// A key is known to the Store from its first Get until Forget. A key whose
// first load failed is retried in the background with backoff. Health turns
// the keys' state into a readiness check: over the keys named by
// WithRequired (which load from New on), or over every known key.
//
// # Rotating safely
//
// Each key has a current and, where the backend keeps one, a previous version
// (Versions): AWSCURRENT and AWSPREVIOUS, Vault KV n and n-1, a file's content
// before it changed. A verifier that accepts both keeps tokens signed before a
// rotation valid during the overlap (see package jwtkeys).
//
// Validators (WithValidator) test a candidate before it replaces the served
// value: a database password can be tried before the old one is dropped. A
// validator registered for a value covers every field read from it. Reload
// fetches every key and applies all of them or none; ReloadOnSignal reloads
// on SIGHUP, if the program asks for it. Subscribe tells which keys changed
// after each swap, to re-dial a pool.
//
// Many rotations change a credential with no overlap: a password changed on
// the database a moment before or after the store gets it. Call, WrapTool
// and Transport cover that gap. A call that fails authentication forces a
// refresh of the credentials it read; if nothing newer is found, it waits a
// few seconds (WithAuthWait) for the other half of the rotation, refreshing
// once per minimum backoff for all the calls that wait, and retries once
// with the new credential. The failure is evidence too: a candidate the
// validators rejected is validated again, and a pending version staged by a
// rotation in progress (Versions.Pending: AWSPENDING, a Vault version marked
// pending) is served if it passes them.
//
// # Concurrency
//
// Reads take no lock: the served values are an immutable snapshot (a
// persistent hash trie, so that publishing a change copies only the path to
// it) behind an atomic pointer, and a View holds one snapshot for a whole
// request. Writers (first loads, background rounds, Refresh, Reload) fetch
// and validate without the Store's lock. A verdict on a candidate holds for
// the value it was reached against; when that value changed meanwhile (a
// concurrent refresh swapped it, or a key started being served from it),
// the candidate is examined again before anything is applied. A value
// fetched earlier never replaces one fetched later.
//
// # Observing
//
// Status and Statuses describe each key (versions served, age, failures);
// StatusHandler serves them as JSON for readiness probes and for a rotation
// agent that checks every instance before it revokes. WithObserver reports
// each refresh, rejection, rotation, reload and authentication-failure retry
// as it happens; package secrets/otelmetrics turns them into OpenTelemetry
// metrics, so that this package compiles no metrics library.
//
// # Errors and secrecy
//
// Failures are *Error values that wrap a class: ErrNotFound, ErrPermission,
// ErrTransient and ErrInvalid from sources, ErrRejected from validators,
// ErrStale and ErrClosed from the Store; test them with errors.Is. No error,
// log record or panic of this package contains a secret's value, and a Secret
// prints, logs and marshals as [REDACTED]; its value comes out only through
// Reveal and Bytes.
//
// # Writing a source
//
// A backend implements Source (Fetch) and, optionally, the capability
// interfaces. It classifies its errors with the sentinels and builds values
// with NewSecret. The module's sources pass one conformance suite.
package secrets
