package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/secrets"
)

// RecordSuffix is added to a secret's path to name the KV v2 secret that
// holds its rotation record: the record of "secret/mcp/db" is the secret
// "secret/mcp/db.rotation", in the same mount, whose fields are those of
// secrets.Rotation ("vault kv get secret/mcp/db.rotation" shows them).
// Its version number is the record's Revision.
const RecordSuffix = ".rotation"

// LoadRotation implements secrets.RotationRecorder for KV v2: it reads the
// latest version of the record secret (RecordSuffix). No record secret
// gives the zero Rotation; a record secret whose latest version is deleted
// or destroyed gives the zero Rotation with that version as its Revision,
// so that SaveRotation writes over it. A key under a KV v1 mount, which
// keeps no record, gives the zero Rotation too.
func (s *Source) LoadRotation(ctx context.Context, key string) (secrets.Rotation, error) {
	const op = "load rotation"
	_, loc, err := s.writable(ctx, op, key)
	if errors.Is(err, errors.ErrUnsupported) {
		return secrets.Rotation{}, nil // KV v1: no record can have been saved
	}
	if err != nil {
		return secrets.Rotation{}, err
	}
	p := loc.mount + "/data/" + loc.rel + RecordSuffix
	var sec *api.Secret
	err = s.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		return secrets.Rotation{}, classify(ctx, op, p, err)
	}
	if sec == nil || sec.Data == nil {
		return secrets.Rotation{}, nil
	}
	md, _ := sec.Data["metadata"].(map[string]any)
	rev, ok := toInt(md["version"])
	if !ok || rev < 1 {
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, p, "Vault did not say which version it read", nil)
	}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		return secrets.Rotation{Revision: strconv.Itoa(rev)}, nil // deleted or destroyed
	}
	b, err := json.Marshal(data)
	if err != nil {
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, p, "version "+strconv.Itoa(rev)+" is not a rotation record", nil)
	}
	var rec secrets.Rotation
	if err := json.Unmarshal(b, &rec); err != nil {
		// The decoder's message may quote the record; a record holds no
		// value, but the secret may hold anything.
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, p, "version "+strconv.Itoa(rev)+" is not a rotation record", nil)
	}
	rec.Revision = strconv.Itoa(rev)
	return rec, nil
}

// SaveRotation implements secrets.RotationRecorder for KV v2: it writes rec
// as a new version of the record secret (RecordSuffix) with check-and-set
// on rec.Revision (0, "create only", for ""), so of savers racing on one
// revision exactly one wins and the others fail with secrets.ErrConflict.
// The new version's number is the new Revision. A record whose JSON is over
// secrets.MaxRotationSize fails with secrets.ErrInvalid.
func (s *Source) SaveRotation(ctx context.Context, key string, rec secrets.Rotation) (secrets.Rotation, error) {
	const op = "save rotation"
	k, loc, err := s.writable(ctx, op, key)
	if err != nil {
		return secrets.Rotation{}, err
	}
	p := loc.rel + RecordSuffix
	cas := 0
	if rec.Revision != "" {
		cas, err = strconv.Atoi(rec.Revision)
		if err != nil || cas < 1 {
			return secrets.Rotation{}, conflict(op, k.path+RecordSuffix, "revision "+quoteName(rec.Revision)+" is no version of the record")
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, k.path+RecordSuffix, "the record cannot be encoded", nil)
	}
	if len(b) > secrets.MaxRotationSize {
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, k.path+RecordSuffix,
			"the record's JSON takes "+strconv.Itoa(len(b))+" bytes, over "+strconv.Itoa(secrets.MaxRotationSize), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		return secrets.Rotation{}, newError(secrets.ErrInvalid, op, k.path+RecordSuffix, "the record cannot be encoded", nil)
	}
	rk := secretKey{key: k.key, path: k.path + RecordSuffix}
	rl := location{mount: loc.mount, rel: p, version: 2}
	ver, err := s.writeData(ctx, op, rk, rl, data, cas)
	if err != nil {
		return secrets.Rotation{}, err
	}
	out := rec.Clone()
	out.Revision = strconv.Itoa(ver)
	return out, nil
}
