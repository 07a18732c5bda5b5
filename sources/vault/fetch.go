package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// maxPreviousReads bounds the data reads one fetch spends looking for the
// previous version, should the metadata call a version live that turns out
// deleted (a deletion between the two calls, or clocks that disagree).
const maxPreviousReads = 3

// Fetch returns the secret at key: for KV v2 its latest version as Current
// (or, while a rotation is in progress, the version its marks name current,
// with the staged one as Pending) and the newest earlier version that is
// neither deleted nor destroyed as Previous; for KV v1 its value as Current
// and no Previous. See the package documentation for keys, values, the
// rotation marks and errors.
func (s *Source) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	r := s.fetch(ctx, key, secrets.Versions{}, false)
	return r.Versions, r.Err
}

// FetchIfChanged implements secrets.ChangeDetector. For KV v2 it reads the
// secret's metadata, one call, and answers Unchanged when the current,
// previous and pending version numbers are those of req.Known (a version
// staged, promoted or discarded is a change); otherwise it reads the
// versions it does not hold already (versions never change once written).
// For KV v1, which keeps no metadata, it reads the value and compares
// version ids. Without req.Known it is Fetch.
func (s *Source) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	return s.fetch(ctx, req.Key, req.Known, !req.Known.Current.IsZero())
}

func (s *Source) fetch(ctx context.Context, key string, known secrets.Versions, conditional bool) secrets.Result {
	if err := ctx.Err(); err != nil {
		return secrets.Result{Err: classify(ctx, "read", key, err)}
	}
	if s.isClosed() {
		return secrets.Result{Err: errClosed()}
	}
	k, err := parseKey(key)
	if err != nil {
		return secrets.Result{Err: err}
	}
	loc, err := s.locate(ctx, k)
	if err != nil {
		return secrets.Result{Err: err}
	}
	switch loc.version {
	case engineDatabase:
		return s.fetchDatabase(ctx, k, loc, known, conditional)
	case 1:
		return s.fetchV1(ctx, k, loc, known, conditional)
	}
	return s.fetchV2(ctx, k, loc, known, conditional)
}

func (s *Source) fetchV1(ctx context.Context, k secretKey, loc location, known secrets.Versions, conditional bool) secrets.Result {
	p := loc.mount + "/" + loc.rel
	var sec *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		return secrets.Result{Err: classify(ctx, "read", p, err)}
	}
	if sec == nil || sec.Data == nil {
		return secrets.Result{Err: newError(secrets.ErrNotFound, "read", p, "", nil)}
	}
	value, ok, err := valueOf(sec.Data, k.field)
	if err != nil {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, err.Error(), nil)}
	}
	if !ok {
		return secrets.Result{Err: newError(secrets.ErrInvalid, "read", p, "no field "+quoteName(k.field), nil)}
	}
	id := secrets.ContentVersion(value)
	if conditional && known.Current.Version() == id && known.Previous.IsZero() {
		return secrets.Result{Unchanged: true}
	}
	return secrets.Result{Versions: secrets.Versions{Current: secrets.NewSecret(k.key, id, value)}}
}

func (s *Source) fetchV2(ctx context.Context, k secretKey, loc location, known secrets.Versions, conditional bool) secrets.Result {
	meta, err := s.readMetadata(ctx, k, loc)
	if err != nil {
		return secrets.Result{Err: err}
	}
	vw := meta.viewOf(time.Now())
	if vw.missing != "" {
		return secrets.Result{Err: newError(secrets.ErrNotFound, "read", k.path, vw.missing, nil)}
	}
	curID, prevID, pendID := vw.ids()
	if conditional && known.Current.Version() == curID &&
		known.Previous.Version() == prevID && known.Previous.IsZero() == (prevID == "") &&
		known.Pending.Version() == pendID && known.Pending.IsZero() == (pendID == "") {
		return secrets.Result{Unchanged: true}
	}
	// Versions never change once written, so a version the Store holds
	// need not be read again.
	held := func(id string) (secrets.Secret, bool) {
		switch {
		case !conditional:
		case !known.Current.IsZero() && known.Current.Version() == id:
			return known.Current, true
		case !known.Previous.IsZero() && known.Previous.Version() == id:
			return known.Previous, true
		case !known.Pending.IsZero() && known.Pending.Version() == id:
			return known.Pending, true
		}
		return secrets.Secret{}, false
	}

	current, ok := held(curID)
	if !ok {
		data, found, err := s.readVersion(ctx, loc, vw.current)
		if err != nil {
			return secrets.Result{Err: err}
		}
		if !found {
			return secrets.Result{Err: newError(secrets.ErrNotFound, "read", k.path, "version "+curID+", the current one, is deleted", nil)}
		}
		value, ok, err := valueOf(data, k.field)
		if err != nil {
			return secrets.Result{Err: newError(secrets.ErrInvalid, "read", k.path, "version "+curID+": "+err.Error(), nil)}
		}
		if !ok {
			return secrets.Result{Err: newError(secrets.ErrInvalid, "read", k.path, "version "+curID+" has no field "+quoteName(k.field), nil)}
		}
		current = secrets.NewSecret(k.key, curID, value)
	}

	var previous secrets.Secret
	reads := 0
	for _, n := range vw.prev {
		id := strconv.Itoa(n)
		if sec, ok := held(id); ok {
			previous = sec
			break
		}
		if reads == maxPreviousReads {
			break
		}
		reads++
		data, found, err := s.readVersion(ctx, loc, n)
		if err != nil {
			return secrets.Result{Err: err}
		}
		if !found {
			continue // deleted after all: try an older one
		}
		// A previous version without the selected field is no previous
		// version of that field.
		if value, ok, err := valueOf(data, k.field); err == nil && ok {
			previous = secrets.NewSecret(k.key, id, value)
		}
		break
	}

	// A pending version that turns out deleted, or lacks the selected
	// field, is no pending version (of that field).
	var pending secrets.Secret
	if vw.pending > 0 {
		if sec, ok := held(pendID); ok {
			pending = sec
		} else {
			data, found, err := s.readVersion(ctx, loc, vw.pending)
			if err != nil {
				return secrets.Result{Err: err}
			}
			if found {
				if value, ok, err := valueOf(data, k.field); err == nil && ok {
					pending = secrets.NewSecret(k.key, pendID, value)
				}
			}
		}
	}
	return secrets.Result{Versions: secrets.Versions{Current: current, Previous: previous, Pending: pending}}
}

// readMetadata reads the metadata of a KV v2 secret. A secret that does not
// exist is ErrNotFound.
func (s *Source) readMetadata(ctx context.Context, k secretKey, loc location) (kvMetadata, error) {
	mdPath := loc.mount + "/metadata/" + loc.rel
	var md *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		md, err = c.Logical().ReadWithContext(ctx, mdPath)
		return err
	})
	if err != nil {
		return kvMetadata{}, classify(ctx, "read", mdPath, err)
	}
	if md == nil || md.Data == nil {
		return kvMetadata{}, newError(secrets.ErrNotFound, "read", mdPath, "", nil)
	}
	meta, ok := parseMetadata(md.Data)
	if !ok {
		return kvMetadata{}, newError(secrets.ErrInvalid, "read", mdPath, "unexpected metadata", nil)
	}
	return meta, nil
}

// readVersion reads version n of a KV v2 secret. found is false for a
// version that is deleted, destroyed or gone.
func (s *Source) readVersion(ctx context.Context, loc location, n int) (data map[string]any, found bool, err error) {
	p := loc.mount + "/data/" + loc.rel
	q := map[string][]string{"version": {strconv.Itoa(n)}}
	var sec *api.Secret
	err = s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithDataWithContext(ctx, p, q)
		return err
	})
	if err != nil {
		return nil, false, classify(ctx, "read", p+"?version="+strconv.Itoa(n), err)
	}
	if sec == nil || sec.Data == nil || sec.Data["data"] == nil {
		return nil, false, nil
	}
	data, ok := sec.Data["data"].(map[string]any)
	if !ok {
		return nil, false, newError(secrets.ErrInvalid, "read", p+"?version="+strconv.Itoa(n), "data is not a JSON object", nil)
	}
	return data, true, nil
}

// kvMetadata is what the source uses of a KV v2 secret's metadata.
type kvMetadata struct {
	current     int // current_version: the latest version written
	versions    map[int]versionState
	custom      map[string]string // custom_metadata
	maxVersions int               // the key's max_versions; 0: the mount's
}

type versionState struct {
	deletionTime string // RFC 3339, "" when not deleted
	destroyed    bool
}

// deleted reports whether the version is soft-deleted by now. A deletion
// time in the future (delete_version_after) is one that has not happened.
func (v versionState) deleted(now time.Time) bool {
	if v.deletionTime == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, v.deletionTime)
	if err != nil {
		return true
	}
	return !t.After(now)
}

// live returns the versions below cur that are neither deleted nor
// destroyed, newest first.
func (m kvMetadata) live(cur int, now time.Time) []int {
	var out []int
	for n, st := range m.versions {
		if n < cur && !st.destroyed && !st.deleted(now) {
			out = append(out, n)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}

func parseMetadata(data map[string]any) (kvMetadata, bool) {
	cur, ok := toInt(data["current_version"])
	if !ok {
		return kvMetadata{}, false
	}
	m := kvMetadata{current: cur, versions: map[int]versionState{}, custom: map[string]string{}}
	if cm, ok := data["custom_metadata"].(map[string]any); ok {
		for k, v := range cm {
			if s, ok := v.(string); ok {
				m.custom[k] = s
			}
		}
	}
	if mv, ok := toInt(data["max_versions"]); ok {
		m.maxVersions = mv
	}
	vs, _ := data["versions"].(map[string]any)
	for k, raw := range vs {
		n, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		v, _ := raw.(map[string]any)
		dt, _ := v["deletion_time"].(string)
		destroyed, _ := v["destroyed"].(bool)
		m.versions[n] = versionState{deletionTime: dt, destroyed: destroyed}
	}
	return m, true
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(string(n))
		return i, err == nil
	case float64:
		return int(n), n == float64(int(n))
	case int:
		return n, true
	}
	return 0, false
}

// valueOf renders a secret's data as the source serves it: the whole map as
// compact JSON, or one field of it (a string as its text, anything else as
// compact JSON). ok is false when the field is absent.
func valueOf(data map[string]any, field string) (value []byte, ok bool, err error) {
	if field == "" {
		b, err := compactJSON(data)
		return b, err == nil, err
	}
	v, ok := data[field]
	if !ok {
		return nil, false, nil
	}
	if s, isString := v.(string); isString {
		return []byte(s), true, nil
	}
	b, err := compactJSON(v)
	return b, err == nil, err
}

// compactJSON encodes v as compact JSON with object members sorted by name
// and without HTML escaping, so that a value reads as it was written.
// Numbers keep their digits: the api package decodes them as json.Number.
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errEncode
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// errEncode replaces an encoding error, whose message might quote a value.
var errEncode = jsonError("value cannot be encoded as JSON")

type jsonError string

func (e jsonError) Error() string { return string(e) }
