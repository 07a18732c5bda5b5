package vaulttest

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/database"
	"github.com/hashicorp/vault/plugins/database/postgresql"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// newCore builds a Vault core on an in-memory physical backend with the
// default Shamir seal, initialises and unseals it, and registers a t.Cleanup
// that shuts it down and waits. Its engines are KV (versions 1 and 2), the
// database secrets engine with PostgreSQL as a builtin plugin, and the AppRole
// auth method, besides what every core has (token auth, cubbyhole, identity,
// sys).
//
// The core is built here, rather than by vault.TestCoreUnsealedWithConfig,
// because that helper always installs Vault's mock plugin registry, whose
// "postgresql-database-plugin" is an empty stub; the database engine needs
// the real plugin, which production Vault finds in its builtin registry.
func newCore(t testing.TB, logger hclog.InterceptLogger) (core *vault.Core, keys [][]byte, rootToken string) {
	t.Helper()
	phys, err := inmem.NewInmem(nil, logger)
	if err != nil {
		t.Fatalf("vaulttest: in-memory storage: %v", err)
	}
	core, err = vault.NewCore(&vault.CoreConfig{
		Physical:     phys,
		Logger:       logger,
		DisableMlock: true,
		LogicalBackends: map[string]logical.Factory{
			"kv":       kv.Factory,
			"database": database.Factory,
		},
		CredentialBackends: map[string]logical.Factory{
			"approle": approle.Factory,
		},
		BuiltinRegistry: registry{},
	})
	if err != nil {
		t.Fatalf("vaulttest: new core: %v", err)
	}
	t.Cleanup(func() {
		if err := core.ShutdownWait(); err != nil {
			t.Logf("vaulttest: core shutdown: %v", err)
		}
	})
	rootToken, keys = vault.TestInitUnsealCore(t, core)
	return core, keys, rootToken
}

// postgresPlugin is the name under which Vault's builtin registry serves its
// PostgreSQL database plugin, and the plugin_name of a connection that uses
// it.
const postgresPlugin = "postgresql-database-plugin"

// registry is the core's builtin plugin registry: PostgreSQL's database
// plugin, run in-process as production Vault runs its builtin plugins. KV and
// AppRole are given to the core directly (CoreConfig.LogicalBackends and
// CredentialBackends) and need no entry.
type registry struct{}

func (registry) Contains(name string, typ consts.PluginType) bool {
	return name == postgresPlugin && typ == consts.PluginTypeDatabase
}

func (r registry) Get(name string, typ consts.PluginType) (func() (any, error), bool) {
	if !r.Contains(name, typ) {
		return nil, false
	}
	return postgresql.New, true
}

func (registry) Keys(typ consts.PluginType) []string {
	if typ == consts.PluginTypeDatabase {
		return []string{postgresPlugin}
	}
	return nil
}

func (r registry) DeprecationStatus(name string, typ consts.PluginType) (consts.DeprecationStatus, bool) {
	if !r.Contains(name, typ) {
		return consts.Unknown, false
	}
	return consts.Supported, true
}

func (registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }
