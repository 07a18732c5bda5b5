package secrets

import "context"

// A Source reads secrets from one backend. It is the contract between the
// Store and a backend (sources/memory, sources/file, sources/awssm, ...):
// small on purpose, with optional capabilities that the Store discovers with a
// type assertion (BatchFetcher, ChangeDetector, Watcher).
//
// Fetch returns the current version of key and, where the backend keeps one,
// the version before it. Errors are classified by wrapping ErrNotFound,
// ErrPermission, ErrTransient or ErrInvalid, and never hold a value.
//
// Fetch must honour ctx, be safe for concurrent use, and return Secrets that
// share no memory with the source's own state (NewSecret copies). The Store
// calls it from its own goroutines, for several keys at once; it must not
// call the Store's Close, which waits for it to return. An empty value is
// not served: the Store treats it as a failure wrapping ErrInvalid, and an
// empty previous version as none. The key it
// receives is the reference with its scheme and field selector removed: for
// "file:///run/secrets/db#password" the file source receives
// "/run/secrets/db". The Store itself stamps the Secrets with the key the
// caller used, the source's name and the fetch time.
type Source interface {
	Fetch(ctx context.Context, key string) (Versions, error)
}

// A Request asks a source for one key, saying what the Store already holds so
// that a source able to tell cheaply that nothing changed can say so.
type Request struct {
	Key string
	// Known is what the Store holds for Key: set in the requests of
	// background polling and of Reload, zero on a first load and on
	// Refresh.
	Known Versions
	// Forced marks the requests of a reload (Store.Reload), which the
	// Store sends to FetchMany only, with Known set: the caller asked to
	// bypass what the Store holds. The answer to a forced request must not
	// be Unchanged, and its Current must be read from the backend again,
	// value included. Its Previous and Pending may be those of Known only
	// where what the source read for this request shows that the current
	// version is still Known.Current's (the same version id) and nothing
	// it read contradicts them; where the current version moved, the
	// source reads the other versions again, as for a request without
	// Known. A reload of unchanged keys then costs what a batch of
	// current values costs, not a full read of every key.
	//
	// A BatchFetcher written before Forced existed ignores it and may
	// answer Unchanged: the Store does not take that answer for a forced
	// request. It asks again for those keys without Known and without
	// Forced, in one more FetchMany call (Fetch for a single key), so a
	// reload through such a source still reads every value from the
	// backend, at the cost of that second call. The simplest way for a
	// source to honour Forced is to treat a forced request as one without
	// Known.
	Forced bool
}

// A Result answers one Request.
type Result struct {
	Versions Versions
	// Unchanged reports that the versions are still those of Known: the
	// Store keeps its values and only notes that they are current (and
	// Versions.RefreshBy, if the source sets it). A source may set it only
	// when Known.Current is not zero, and not for a forced request (see
	// Request.Forced).
	//
	// From FetchIfChanged, Unchanged says that every version is still
	// Known's: the current, previous and pending ones. From FetchMany it
	// may rest on the current version alone, since a batch read may see
	// only current versions (AWS BatchGetSecretValue does, and cannot
	// tell that a previous version was removed while the current one
	// stayed). The Store takes a batch's Unchanged as a read of the
	// current version only: a full read of the key that ended before it
	// still counts where it agrees on the current version and differs on
	// the others (the Store reads the key in full again to settle which is
	// newer, and never lets a value go back to an older current version),
	// a failed read that ended before it is still reported, and Refresh
	// does not count it as the read after the call that it promises.
	Unchanged bool
	Err       error
}

// A BatchFetcher fetches many keys in as few backend calls as it can (AWS
// BatchGetSecretValue, for instance). The Store uses it for refresh rounds,
// Refresh and reloads that touch more than one key of the source: a round's
// requests carry Known (and may be answered Unchanged on the strength of the
// current version alone; see Result.Unchanged), a Refresh's do not, and a
// reload's carry Known and are Forced.
//
// FetchMany returns exactly one Result per Request, in the same order. A
// failure of the whole call is reported in every Result. Like Fetch, it may
// run concurrently with the source's other methods, must honour ctx and must
// not call the Store's Close.
type BatchFetcher interface {
	FetchMany(ctx context.Context, reqs []Request) []Result
}

// A ChangeDetector can tell cheaply whether a key changed since the versions
// the Store holds (a metadata read, a stat) and fetch values only when it did.
// The Store uses it for background polling only; Refresh and Reload call
// Fetch, or FetchMany (see Request.Forced), instead.
// Like Fetch, it may run concurrently with the source's other methods, must
// honour ctx and must not call the Store's Close.
type ChangeDetector interface {
	FetchIfChanged(ctx context.Context, req Request) Result
}

// A Watcher pushes notice of changes, as a file watch or an event stream does.
//
// The Store calls Watch once, in a goroutine of its own, and cancels ctx when
// it closes. Watch calls changed with a key (as the source receives it in
// Fetch) whenever that key may have changed, or with "" when anything may
// have; the Store then refreshes those keys off the read path. changed never
// blocks and may be called from any goroutine. Watch returns when ctx is
// done; an error it returns earlier, or a panic, is logged (the panic's value
// left out) and watching is not resumed, so polling remains the only signal.
// Watch must not call the Store's Close, which waits for Watch to return.
type Watcher interface {
	Watch(ctx context.Context, changed func(key string)) error
}
