package vaulttest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Postgres says how the database secrets engine reaches a PostgreSQL server:
// as a user allowed to create roles and change their passwords (a superuser,
// in tests).
type Postgres struct {
	Host     string // 127.0.0.1
	Port     int
	Database string // "postgres" when empty
	Username string
	Password string
}

// MountDatabase mounts the database secrets engine at path ("database").
// Whatever was mounted at path before is unmounted first, with its leases
// revoked.
func (s *Server) MountDatabase(t testing.TB, path string) {
	t.Helper()
	path = strings.Trim(path, "/")
	c := s.Client(t)
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatalf("vaulttest: list mounts: %v", err)
	}
	if _, ok := mounts[path+"/"]; ok {
		if err := c.Sys().Unmount(path); err != nil {
			t.Fatalf("vaulttest: unmount %q: %v", path, err)
		}
	}
	if err := c.Sys().Mount(path, &api.MountInput{Type: "database"}); err != nil {
		t.Fatalf("vaulttest: mount the database engine at %q: %v", path, err)
	}
}

// ConnectPostgres writes the connection name of the database engine mounted
// at mount (config/<name>): PostgreSQL's builtin plugin, reaching pg with
// the credentials it gives, for the roles allowed (every role when none is
// named). Vault checks the connection when it is written.
func (s *Server) ConnectPostgres(t testing.TB, mount, name string, pg Postgres, allowed ...string) {
	t.Helper()
	db := pg.Database
	if db == "" {
		db = "postgres"
	}
	roles := "*"
	if len(allowed) > 0 {
		roles = strings.Join(allowed, ",")
	}
	_, err := s.Client(t).Logical().Write(strings.Trim(mount, "/")+"/config/"+name, map[string]any{
		"plugin_name":    postgresPlugin,
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@%s:%d/%s?sslmode=disable", pg.Host, pg.Port, db),
		"username":       pg.Username,
		"password":       pg.Password,
		"allowed_roles":  roles,
		// Short-lived test clusters: a pooled connection of the engine must
		// not outlive the server it was opened to.
		"max_connection_lifetime": "30s",
	})
	if err != nil {
		t.Fatalf("vaulttest: configure the database connection %q: %v", name, err)
	}
}

// DynamicRole writes the dynamic role name of the database engine at mount:
// each read of creds/<name> creates a PostgreSQL role that can log in, with a
// lease of ttl that can be renewed up to maxTTL (whole seconds; Vault's
// minimum is one).
func (s *Server) DynamicRole(t testing.TB, mount, name, conn string, ttl, maxTTL time.Duration) {
	t.Helper()
	_, err := s.Client(t).Logical().Write(strings.Trim(mount, "/")+"/roles/"+name, map[string]any{
		"db_name": conn,
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		},
		"default_ttl": int64(ttl / time.Second),
		"max_ttl":     int64(maxTTL / time.Second),
	})
	if err != nil {
		t.Fatalf("vaulttest: write the dynamic role %q: %v", name, err)
	}
}

// StaticRole writes the static role name of the database engine at mount:
// Vault manages the password of the existing PostgreSQL role username and
// changes it every rotationPeriod (whole seconds; Vault's minimum is five),
// and whenever rotate-role/<name> is written. Vault sets a new password when
// the role is written.
func (s *Server) StaticRole(t testing.TB, mount, name, conn, username string, rotationPeriod time.Duration) {
	t.Helper()
	_, err := s.Client(t).Logical().Write(strings.Trim(mount, "/")+"/static-roles/"+name, map[string]any{
		"db_name":         conn,
		"username":        username,
		"rotation_period": int64(rotationPeriod / time.Second),
	})
	if err != nil {
		t.Fatalf("vaulttest: write the static role %q: %v", name, err)
	}
}
