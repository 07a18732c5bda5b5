package vaulttest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, vaulttest.GoleakOptions()...)
}

func TestStart(t *testing.T) {
	v := vaulttest.Start(t)
	c := v.Client(t)

	h, err := c.Sys().Health()
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	if !h.Initialized || h.Sealed || h.Standby {
		t.Fatalf("health = %+v, want initialized, unsealed, active", h)
	}

	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatalf("list mounts: %v", err)
	}
	m, ok := mounts["secret/"]
	if !ok || m.Type != "kv" || m.Options["version"] != "2" {
		t.Fatalf("secret/ = %+v, want a KV v2 mount (as in vault server -dev)", m)
	}

	// secret/ is usable as KV v2 straight away.
	ctx := context.Background()
	if _, err := c.KVv2("secret").Put(ctx, "hello", map[string]any{"v": "1"}); err != nil {
		t.Fatalf("put secret/hello: %v", err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := vaulttest.Start(t), vaulttest.Start(t)
	if a.Addr == b.Addr || a.RootToken == b.RootToken {
		t.Fatalf("servers share address or token: %s %s", a.Addr, b.Addr)
	}
	ctx := context.Background()
	if _, err := a.Client(t).KVv2("secret").Put(ctx, "only-a", map[string]any{"v": "a"}); err != nil {
		t.Fatalf("put on a: %v", err)
	}
	_, err := b.Client(t).KVv2("secret").Get(ctx, "only-a")
	if !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("get on b = %v, want ErrSecretNotFound", err)
	}
}

func TestKVv2Versions(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "kv", 2)
	kv := v.Client(t).KVv2("kv")
	ctx := context.Background()

	for i, pw := range []string{"one", "two", "three"} {
		s, err := kv.Put(ctx, "app/db", map[string]any{"password": pw})
		if err != nil {
			t.Fatalf("put %d: %v", i+1, err)
		}
		if s.VersionMetadata.Version != i+1 {
			t.Fatalf("put %d: version %d", i+1, s.VersionMetadata.Version)
		}
	}

	md, err := kv.GetMetadata(ctx, "app/db")
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if md.CurrentVersion != 3 || md.OldestVersion != 0 || len(md.Versions) != 3 {
		t.Fatalf("metadata: current %d oldest %d, %d versions; want 3, 0, 3",
			md.CurrentVersion, md.OldestVersion, len(md.Versions))
	}

	wantData(t, kv, 3, "three")
	wantData(t, kv, 2, "two")
	wantData(t, kv, 1, "one")
	latest, err := kv.Get(ctx, "app/db")
	if err != nil || latest.Data["password"] != "three" || latest.VersionMetadata.Version != 3 {
		t.Fatalf("get latest = %+v, %v; want version 3", latest, err)
	}

	// Soft delete of the latest version: data gone, deletion time set,
	// metadata still lists it, the previous version still readable.
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("soft delete: %v", err)
	}
	s, err := kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatalf("get after soft delete: %v", err)
	}
	if s.Data != nil || s.VersionMetadata == nil || s.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("get after soft delete = %+v, want no data and a deletion time", s)
	}
	wantData(t, kv, 2, "two")

	// Undelete brings the same data back.
	if err := kv.Undelete(ctx, "app/db", []int{3}); err != nil {
		t.Fatalf("undelete: %v", err)
	}
	wantData(t, kv, 3, "three")

	// Destroy removes version 2 for good; undelete cannot bring it back.
	if err := kv.Destroy(ctx, "app/db", []int{2}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if err := kv.Undelete(ctx, "app/db", []int{2}); err != nil {
		t.Fatalf("undelete of destroyed version: %v", err)
	}
	s, err = kv.GetVersion(ctx, "app/db", 2)
	if err != nil {
		t.Fatalf("get destroyed version: %v", err)
	}
	if s.Data != nil || !s.VersionMetadata.Destroyed {
		t.Fatalf("get destroyed version = %+v, want no data, destroyed", s)
	}
	md, err = kv.GetMetadata(ctx, "app/db")
	if err != nil {
		t.Fatalf("metadata after destroy: %v", err)
	}
	if !md.Versions["2"].Destroyed || md.Versions["3"].Destroyed || md.CurrentVersion != 3 {
		t.Fatalf("metadata after destroy: %+v", md.Versions)
	}

	// A missing key is ErrSecretNotFound, from data and from metadata.
	if _, err := kv.Get(ctx, "app/nope"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("get missing = %v, want ErrSecretNotFound", err)
	}
	if _, err := kv.GetMetadata(ctx, "app/nope"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("metadata missing = %v, want ErrSecretNotFound", err)
	}
}

func wantData(t *testing.T, kv *api.KVv2, version int, password string) {
	t.Helper()
	s, err := kv.GetVersion(context.Background(), "app/db", version)
	if err != nil {
		t.Fatalf("get version %d: %v", version, err)
	}
	if got := s.Data["password"]; got != password {
		t.Fatalf("version %d: password %v, want %q", version, got, password)
	}
}

func TestKVv1(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "legacy", 1)
	v.MountKV(t, "secret", 1) // replaces the default KV v2 at secret/
	c := v.Client(t)
	ctx := context.Background()

	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatalf("list mounts: %v", err)
	}
	for _, p := range []string{"legacy/", "secret/"} {
		if m := mounts[p]; m == nil || m.Type != "kv" || m.Options["version"] != "1" {
			t.Fatalf("%s = %+v, want KV v1", p, m)
		}
	}

	for _, mount := range []string{"legacy", "secret"} {
		kv := c.KVv1(mount)
		if err := kv.Put(ctx, "app/db", map[string]any{"password": "old"}); err != nil {
			t.Fatalf("%s: put: %v", mount, err)
		}
		if err := kv.Put(ctx, "app/db", map[string]any{"password": "new"}); err != nil {
			t.Fatalf("%s: overwrite: %v", mount, err)
		}
		s, err := kv.Get(ctx, "app/db")
		if err != nil || s.Data["password"] != "new" {
			t.Fatalf("%s: get = %+v, %v; want password new", mount, s, err)
		}
		if err := kv.Delete(ctx, "app/db"); err != nil {
			t.Fatalf("%s: delete: %v", mount, err)
		}
		if _, err := kv.Get(ctx, "app/db"); !errors.Is(err, api.ErrSecretNotFound) {
			t.Fatalf("%s: get after delete = %v, want ErrSecretNotFound", mount, err)
		}
	}
}

func TestAppRoleLogin(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "kv", 2)
	v.WritePolicy(t, "app-read", `
path "kv/data/app/*" { capabilities = ["read"] }
path "kv/metadata/app/*" { capabilities = ["read"] }
`)
	ctx := context.Background()
	if _, err := v.Client(t).KVv2("kv").Put(ctx, "app/db", map[string]any{"password": "pw"}); err != nil {
		t.Fatalf("seed: %v", err)
	}

	const ttl, maxTTL = 90 * time.Second, 5 * time.Minute
	roleID, secretID := v.EnableAppRole(t, "app", []string{"app-read"}, ttl, maxTTL)
	// A second role on the already-enabled mount.
	if r2, s2 := v.EnableAppRole(t, "other", nil, 0, 0); r2 == roleID || s2 == secretID {
		t.Fatal("second role got the first role's credentials")
	}

	c := v.Client(t)
	c.ClearToken()
	login, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id":   roleID,
		"secret_id": secretID,
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if login == nil || login.Auth == nil || login.Auth.ClientToken == "" {
		t.Fatalf("login returned no token: %+v", login)
	}
	if got := time.Duration(login.Auth.LeaseDuration) * time.Second; got != ttl {
		t.Fatalf("login lease %v, want %v", got, ttl)
	}
	if !login.Auth.Renewable || !slices.Contains(login.Auth.TokenPolicies, "app-read") {
		t.Fatalf("login auth = %+v, want renewable with policy app-read", login.Auth)
	}
	c.SetToken(login.Auth.ClientToken)

	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatalf("lookup-self: %v", err)
	}
	if got, err := self.TokenTTL(); err != nil || got <= 0 || got > ttl {
		t.Fatalf("lookup-self ttl = %v, %v; want in (0, %v]", got, err, ttl)
	}
	// Renewal is capped by the role's token_max_ttl.
	renewed, err := c.Auth().Token().RenewSelfWithContext(ctx, int(time.Hour/time.Second))
	if err != nil {
		t.Fatalf("renew-self: %v", err)
	}
	if got := time.Duration(renewed.Auth.LeaseDuration) * time.Second; got <= ttl || got > maxTTL {
		t.Fatalf("renewed lease %v, want in (%v, %v]", got, ttl, maxTTL)
	}

	s, err := c.KVv2("kv").Get(ctx, "app/db")
	if err != nil || s.Data["password"] != "pw" {
		t.Fatalf("read with approle token = %+v, %v", s, err)
	}
	_, err = c.KVv2("secret").Get(ctx, "anything")
	if status := statusOf(err); status != http.StatusForbidden {
		t.Fatalf("read outside policy = %v (status %d), want 403", err, status)
	}

	// A wrong secret id is refused.
	c.ClearToken()
	_, err = c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id":   roleID,
		"secret_id": "00000000-0000-0000-0000-000000000000",
	})
	if status := statusOf(err); status != http.StatusBadRequest {
		t.Fatalf("login with wrong secret id = %v (status %d), want 400", err, status)
	}
}

func TestSealUnseal(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "kv", 2)
	v.WritePolicy(t, "app-read", `path "kv/data/*" { capabilities = ["read"] }`)
	roleID, secretID := v.EnableAppRole(t, "app", []string{"app-read"}, time.Hour, 2*time.Hour)
	ctx := context.Background()
	root := v.Client(t)
	if _, err := root.KVv2("kv").Put(ctx, "app/db", map[string]any{"password": "pw"}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	app := v.Client(t)
	app.ClearToken()
	login, err := app.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id": roleID, "secret_id": secretID,
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	app.SetToken(login.Auth.ClientToken)

	v.Seal(t)
	v.Seal(t) // sealing a sealed server is a no-op

	for name, c := range map[string]*api.Client{"root": root, "approle": app} {
		_, err := c.KVv2("kv").Get(ctx, "app/db")
		if status := statusOf(err); status != http.StatusServiceUnavailable {
			t.Fatalf("%s read while sealed = %v (status %d), want 503", name, err, status)
		}
	}
	st, err := root.Sys().SealStatus()
	if err != nil || !st.Sealed {
		t.Fatalf("seal-status = %+v, %v; want sealed", st, err)
	}

	v.Unseal(t)
	v.Unseal(t) // unsealing an unsealed server is a no-op

	// Storage survives: data, mounts, policies and tokens are back.
	for name, c := range map[string]*api.Client{"root": root, "approle": app} {
		s, err := c.KVv2("kv").Get(ctx, "app/db")
		if err != nil || s.Data["password"] != "pw" {
			t.Fatalf("%s read after unseal = %+v, %v", name, s, err)
		}
	}
	if _, err := root.KVv2("kv").Put(ctx, "app/db", map[string]any{"password": "pw2"}); err != nil {
		t.Fatalf("write after unseal: %v", err)
	}
}

// statusOf returns the HTTP status code of a Vault API error, or 0.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
