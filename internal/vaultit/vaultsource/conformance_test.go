package vaultsource_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
	"github.com/rotorhq/rotor/sources/vault"
)

// harness writes secrets with the root token. The suite's values are plain
// strings, so each is stored as the field "value" of a KV secret, and the
// key asks the source for that field (?field=value).
type harness struct {
	root    *api.Client
	mount   string
	version int
	prefix  string // unique per subtest
}

func (h harness) Key(name string) string {
	return h.mount + "/" + h.prefix + name + "?field=value"
}

func (h harness) Set(ctx context.Context, name, value string) error {
	data := map[string]any{"value": value}
	if h.version == 1 {
		return h.root.KVv1(h.mount).Put(ctx, h.prefix+name, data)
	}
	_, err := h.root.KVv2(h.mount).Put(ctx, h.prefix+name, data)
	return err
}

func (h harness) Delete(ctx context.Context, name string) error {
	if h.version == 1 {
		return h.root.KVv1(h.mount).Delete(ctx, h.prefix+name)
	}
	return h.root.KVv2(h.mount).DeleteMetadata(ctx, h.prefix+name)
}

func TestConformance(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "kv1", 1)
	root := v.Client(t)
	var n atomic.Int64

	run := func(t *testing.T, mount string, version int, client func(t *testing.T) *api.Client, opts ...vault.Option) {
		cfg := sourcetest.Config{
			New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
				h := harness{root: root, mount: mount, version: version, prefix: fmt.Sprintf("ct/%d/", n.Add(1))}
				return newSource(t, client(t), opts...), h
			},
			KeepsPrevious: version == 2,
		}
		if version == 1 {
			// One Source type serves both versions; KV v1 keeps no
			// versions, so its keys refuse every write.
			cfg.NotWritable = secrets.ErrInvalid
		}
		sourcetest.Run(t, cfg)
	}
	rootClient := func(t *testing.T) *api.Client {
		c, _ := newClient(t, v, v.RootToken)
		return c
	}

	t.Run("KVv2", func(t *testing.T) { run(t, "secret", 2, rootClient) })
	t.Run("KVv1", func(t *testing.T) { run(t, "kv1", 1, rootClient) })

	// The same through an AppRole login with a policy that grants only
	// what the documentation says (for reading, and for the writes of a
	// rotation), and mount detection.
	v.WritePolicy(t, "conformance", readPolicy("secret", "ct/")+writePolicy("secret", "ct/"))
	method := appRole(t, v, "conformance", []string{"conformance"}, time.Hour, 2*time.Hour)
	t.Run("KVv2AppRole", func(t *testing.T) {
		run(t, "secret", 2, func(t *testing.T) *api.Client {
			c, _ := newClient(t, v, "")
			return c
		}, vault.WithAuth(method))
	})
	// And with the mount declared.
	t.Run("KVv1Declared", func(t *testing.T) { run(t, "kv1", 1, rootClient, vault.WithMount("kv1", 1)) })
}
