package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// The Source takes part in rotations of KV v2 secrets; see "Rotation" in
// the package documentation. Every Source satisfies these interfaces,
// whatever its mounts: a key under a KV v1 mount fails each of their
// methods with an error wrapping secrets.ErrInvalid and
// errors.ErrUnsupported, and changes nothing.
var (
	_ secrets.Rotatable       = (*Source)(nil)
	_ secrets.PreviousRemover = (*Source)(nil)
)

// writable parses and locates key for a write, which only a KV v2 mount
// takes.
func (s *Source) writable(ctx context.Context, op, key string) (secretKey, location, error) {
	if err := ctx.Err(); err != nil {
		return secretKey{}, location{}, classify(ctx, op, key, err)
	}
	if s.isClosed() {
		return secretKey{}, location{}, errClosed()
	}
	k, err := parseKey(key)
	if err != nil {
		return k, location{}, err
	}
	loc, err := s.locate(ctx, k)
	if err != nil {
		return k, loc, err
	}
	if loc.version == engineDatabase {
		return k, loc, newError(secrets.ErrInvalid, op, k.path,
			"the database secrets engine makes and rotates its own credentials: rotation needs a KV version 2 mount", errors.ErrUnsupported)
	}
	if loc.version != 2 {
		return k, loc, newError(secrets.ErrInvalid, op, k.path,
			"KV version 1 keeps no versions: rotation needs a KV version 2 mount", errors.ErrUnsupported)
	}
	return k, loc, nil
}

// state reads the metadata of a KV v2 key and applies the rule of viewOf.
// A key without a current version fails with ErrNotFound unless
// anyCurrent is set.
func (s *Source) state(ctx context.Context, op string, k secretKey, loc location, anyCurrent bool) (kvMetadata, view, error) {
	meta, err := s.readMetadata(ctx, k, loc)
	if err != nil {
		return meta, view{}, relabel(err, op)
	}
	vw := meta.viewOf(time.Now())
	if vw.missing != "" && !anyCurrent {
		return meta, vw, newError(secrets.ErrNotFound, op, k.path, vw.missing, nil)
	}
	return meta, vw, nil
}

// relabel puts op in front of the message of an error of this package.
func relabel(err error, op string) error {
	var oe *opError
	if errors.As(err, &oe) && !strings.HasPrefix(oe.msg, "vault: "+op+" ") {
		return &opError{msg: "vault: " + op + ": " + strings.TrimPrefix(oe.msg, "vault: "), errs: oe.errs}
	}
	return err
}

func conflict(op, path, detail string) error {
	return newError(secrets.ErrConflict, op, path, detail, nil)
}

// Stage implements secrets.Stager for KV v2: it writes req.Value as a new
// version of the secret, with check-and-set on the latest version number,
// after marking that version pending (MarkPending) and the current one
// current (MarkCurrent) in the secret's custom metadata, so that no reader
// is ever served it as current. The pending version's id is its version
// number.
//
// The value is the whole secret, a JSON object, for a key without
// ?field=; with ?field=<name>, the new version is the current one with that
// field set to the value (a string), its other fields kept.
//
// Stage fails with secrets.ErrConflict when req.Current is not the current
// version, when another value is pending, or when the check-and-set fails
// (another writer wrote a version since the metadata was read): of
// stagers racing on one key, one wins. A key whose max_versions would
// prune the current version to make room fails with secrets.ErrInvalid.
func (s *Source) Stage(ctx context.Context, key string, req secrets.StageRequest) (string, error) {
	const op = "stage"
	k, loc, err := s.writable(ctx, op, key)
	if err != nil {
		return "", err
	}
	if len(req.Value) == 0 {
		return "", newError(secrets.ErrInvalid, op, k.path, "empty value", nil)
	}
	if req.Current == "" {
		return "", newError(secrets.ErrInvalid, op, k.path, "no current version given", nil)
	}
	meta, vw, err := s.state(ctx, op, k, loc, false)
	if err != nil {
		return "", err
	}
	curID, _, pendID := vw.ids()
	if curID != req.Current {
		return "", conflict(op, k.path, "version "+curID+" is current, not "+quoteName(req.Current))
	}

	data, err := s.stagedData(ctx, op, k, loc, vw.current, req.Value)
	if err != nil {
		return "", err
	}
	want, _, err := valueOf(data, k.field)
	if err != nil {
		return "", newError(secrets.ErrInvalid, op, k.path, err.Error(), nil)
	}
	if vw.pending > 0 {
		pend, found, err := s.readVersion(ctx, loc, vw.pending)
		if err != nil {
			return "", relabel(err, op)
		}
		if found {
			if got, ok, err := valueOf(pend, k.field); err == nil && ok && bytes.Equal(got, want) {
				return pendID, nil // staged already: an earlier call's answer was lost
			}
		}
		return "", conflict(op, k.path, "version "+pendID+" is pending already")
	}

	next := meta.current + 1
	if meta.maxVersions > 0 && next-vw.current >= meta.maxVersions {
		return "", newError(secrets.ErrInvalid, op, k.path, "the key's max_versions ("+strconv.Itoa(meta.maxVersions)+
			") would prune version "+curID+", the current one, to make room for a pending version", nil)
	}
	// Mark first, then write: the new version is pending from the moment it
	// exists. The marks alone change nothing a reader sees (the version they
	// name pending does not exist yet).
	old := parseMarks(meta.custom)
	if old.current != vw.current || old.pending != next {
		err := s.patchMarks(ctx, op, k, loc, map[string]any{MarkCurrent: strconv.Itoa(vw.current), MarkPending: strconv.Itoa(next)})
		if err != nil {
			return "", err
		}
	}
	ver, err := s.writeData(ctx, op, k, loc, data, meta.current)
	if err != nil {
		if !errors.Is(err, secrets.ErrConflict) && !errors.Is(err, secrets.ErrTransient) && ctx.Err() == nil {
			// Refused (a policy, a bad value): nothing was written, so put
			// the marks back as they were. A conflict leaves them: another
			// stager's version may be the one they name.
			_ = s.patchMarks(ctx, op, k, loc, map[string]any{MarkCurrent: markValue(old.current), MarkPending: markValue(old.pending)})
		}
		return "", err
	}
	if ver != next {
		return "", newError(secrets.ErrTransient, op, k.path, "Vault wrote version "+strconv.Itoa(ver)+", not "+strconv.Itoa(next), nil)
	}
	return strconv.Itoa(next), nil
}

// markValue renders a mark for a merge patch: nil removes it.
func markValue(n int) any {
	if n <= 0 {
		return nil
	}
	return strconv.Itoa(n)
}

// stagedData builds the data of the version Stage writes.
func (s *Source) stagedData(ctx context.Context, op string, k secretKey, loc location, current int, value []byte) (map[string]any, error) {
	if k.field == "" {
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		var data map[string]any
		if err := dec.Decode(&data); err != nil || data == nil || dec.More() {
			return nil, newError(secrets.ErrInvalid, op, k.path, "the value is not a JSON object (a whole KV secret); stage one field with ?field=<name>", nil)
		}
		return data, nil
	}
	cur, found, err := s.readVersion(ctx, loc, current)
	if err != nil {
		return nil, relabel(err, op)
	}
	if !found {
		return nil, conflict(op, k.path, "version "+strconv.Itoa(current)+", the current one, was deleted")
	}
	data := maps.Clone(cur)
	data[k.field] = string(value)
	return data, nil
}

// writeData writes data as a new version with check-and-set cas and
// returns its number.
func (s *Source) writeData(ctx context.Context, op string, k secretKey, loc location, data map[string]any, cas int) (int, error) {
	p := loc.mount + "/data/" + loc.rel
	var sec *api.Secret
	err := s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().WriteWithContext(ctx, p, map[string]any{
			"options": map[string]any{"cas": cas},
			"data":    data,
		})
		return err
	})
	if err != nil {
		if casMismatch(err) {
			return 0, newError(secrets.ErrConflict, op, k.path, "check-and-set on version "+strconv.Itoa(cas)+" failed: another version was written", err)
		}
		return 0, classify(ctx, op, p, err)
	}
	if sec == nil || sec.Data == nil {
		return 0, newError(secrets.ErrInvalid, op, p, "Vault did not say which version it wrote", nil)
	}
	n, ok := toInt(sec.Data["version"])
	if !ok {
		return 0, newError(secrets.ErrInvalid, op, p, "Vault did not say which version it wrote", nil)
	}
	return n, nil
}

// casMismatch reports whether err is Vault's refusal of a check-and-set
// write whose version is no longer the latest (HTTP 400).
func casMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, m := range re.Errors {
		if strings.Contains(m, "check-and-set parameter did not match") {
			return true
		}
	}
	return false
}

// patchMarks merges marks into the key's custom metadata (a JSON merge
// patch: other keys are kept, a nil value removes one).
func (s *Source) patchMarks(ctx context.Context, op string, k secretKey, loc location, marks map[string]any) error {
	p := loc.mount + "/metadata/" + loc.rel
	err := s.do(ctx, func(c *api.Client) error {
		_, err := c.Logical().JSONMergePatch(ctx, p, map[string]any{"custom_metadata": marks})
		return err
	})
	return classify(ctx, op, p, err)
}

// Promote implements secrets.Stager for KV v2: one write of the custom
// metadata names pending current (MarkCurrent) and removes MarkPending;
// readers see the new current version, with the one it replaced as
// previous, in that one step.
//
// Vault offers no check-and-set on metadata, so Promote reads, checks and
// then writes: two writers of one key's marks at once (a Promote and a
// Discard, say) are kept apart by the key's rotation record
// (secrets.RotationRecorder), which the agent holds while it calls them.
func (s *Source) Promote(ctx context.Context, key, pending, current string) error {
	const op = "promote"
	k, loc, err := s.writable(ctx, op, key)
	if err != nil {
		return err
	}
	_, vw, err := s.state(ctx, op, k, loc, false)
	if err != nil {
		return err
	}
	curID, prevID, pendID := vw.ids()
	switch {
	case curID == pending && (prevID == current || prevID == ""):
		return nil // promoted already
	case curID == pending:
		return conflict(op, k.path, "version "+pending+" is current, but "+quoteName(current)+" is not previous")
	case pendID != pending:
		return newError(secrets.ErrNotFound, op, k.path, "version "+quoteName(pending)+" is neither pending nor current", nil)
	case curID != current:
		return conflict(op, k.path, "version "+curID+" is current, not "+quoteName(current))
	}
	return s.patchMarks(ctx, op, k, loc, map[string]any{MarkCurrent: pendID, MarkPending: nil})
}

// Discard implements secrets.Stager for KV v2: it deletes (soft: `vault kv
// undelete` brings it back, as pending again while the marks still name
// it) the pending version, then removes MarkPending. Like Promote it checks,
// then writes. It discards a pending version even when the current one has
// been deleted by hand.
func (s *Source) Discard(ctx context.Context, key, pending string) error {
	const op = "discard"
	k, loc, err := s.writable(ctx, op, key)
	if err != nil {
		return err
	}
	_, vw, err := s.state(ctx, op, k, loc, true)
	if err != nil {
		return err
	}
	curID, _, pendID := vw.ids()
	switch {
	case curID == pending:
		return conflict(op, k.path, "version "+pending+" is current: a current version is never discarded")
	case pendID == "":
		return nil // discarded already, or never staged
	case pendID != pending:
		return conflict(op, k.path, "version "+pendID+" is pending, not "+quoteName(pending))
	}
	p := loc.mount + "/delete/" + loc.rel
	err = s.do(ctx, func(c *api.Client) error {
		_, err := c.Logical().WriteWithContext(ctx, p, map[string]any{"versions": []int{vw.pending}})
		return err
	})
	if err != nil {
		return classify(ctx, op, p, err)
	}
	return s.patchMarks(ctx, op, k, loc, map[string]any{MarkPending: nil})
}

// RemovePrevious implements secrets.PreviousRemover for KV v2: it names
// previous retired (MarkRetired), after which neither it nor any older
// version is served as previous. The version itself is kept (`vault kv get
// -version` still reads it); delete or destroy it with the vault command
// where it must not be read at all.
func (s *Source) RemovePrevious(ctx context.Context, key, previous string) error {
	const op = "remove previous"
	k, loc, err := s.writable(ctx, op, key)
	if err != nil {
		return err
	}
	_, vw, err := s.state(ctx, op, k, loc, false)
	if err != nil {
		return err
	}
	_, prevID, _ := vw.ids()
	switch {
	case prevID == "":
		return nil
	case prevID != previous:
		return conflict(op, k.path, "version "+prevID+" is previous, not "+quoteName(previous))
	}
	return s.patchMarks(ctx, op, k, loc, map[string]any{MarkRetired: prevID})
}
