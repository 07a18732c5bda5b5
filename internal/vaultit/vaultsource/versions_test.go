package vaultsource_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// TestVersions walks a KV v2 secret through writes, soft deletes, destroys
// and undeletes, and checks after each step what Fetch and FetchIfChanged
// (given what the previous step returned) answer.
func TestVersions(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	kv := root.KVv2("secret")
	ctx := testCtx(t)
	c, _ := newClient(t, v, v.RootToken)
	src := newSource(t, c)
	const key = "secret/app/db"
	const fieldKey = key + "?field=pw"

	var known, knownField secrets.Versions
	// step checks both forms of the key against the rule: cur and prev are
	// version numbers ("" for none), notFound the error instead.
	step := func(what, cur, prev string, notFound bool) {
		t.Helper()
		for _, k := range []string{key, fieldKey} {
			got, err := src.Fetch(ctx, k)
			held := &known
			if k == fieldKey {
				held = &knownField
			}
			r := src.FetchIfChanged(ctx, secrets.Request{Key: k, Known: *held})
			if notFound {
				if !errors.Is(err, secrets.ErrNotFound) || !errors.Is(r.Err, secrets.ErrNotFound) {
					t.Fatalf("%s: %s: Fetch err %v, FetchIfChanged err %v; want ErrNotFound", what, k, err, r.Err)
				}
				continue
			}
			if err != nil || r.Err != nil {
				t.Fatalf("%s: %s: Fetch err %v, FetchIfChanged err %v", what, k, err, r.Err)
			}
			if got.Current.Version() != cur || got.Previous.Version() != prev {
				t.Fatalf("%s: %s: Fetch gave current %q previous %q; want %q %q",
					what, k, got.Current.Version(), got.Previous.Version(), cur, prev)
			}
			wantValue := func(s secrets.Secret) string {
				if k == fieldKey {
					return "pw" + s.Version()
				}
				return `{"n":` + s.Version() + `,"pw":"pw` + s.Version() + `"}`
			}
			if got.Current.Reveal() != wantValue(got.Current) || (prev != "" && got.Previous.Reveal() != wantValue(got.Previous)) {
				t.Fatalf("%s: %s: values do not match their versions", what, k)
			}
			sameAsHeld := held.Current.Version() == cur && held.Previous.Version() == prev
			if r.Unchanged != sameAsHeld {
				t.Fatalf("%s: %s: FetchIfChanged unchanged=%v, want %v", what, k, r.Unchanged, sameAsHeld)
			}
			if !r.Unchanged && (r.Versions.Current.Version() != cur || r.Versions.Previous.Version() != prev ||
				!r.Versions.Current.Equal(got.Current) || !r.Versions.Previous.Equal(got.Previous)) {
				t.Fatalf("%s: %s: FetchIfChanged and Fetch disagree", what, k)
			}
			*held = got
		}
	}
	write := func() {
		t.Helper()
		md, err := kv.GetMetadata(ctx, "app/db")
		n := 1
		if err == nil {
			n = md.CurrentVersion + 1
		}
		if got := put(t, root, "secret", "app/db", map[string]any{"n": n, "pw": "pw" + strconv.Itoa(n)}); got != n {
			t.Fatalf("wrote version %d, expected %d", got, n)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	write()
	step("version 1", "1", "", false)
	write()
	write()
	step("versions 1-3", "3", "2", false)
	must(kv.Delete(ctx, "app/db")) // soft-deletes the latest
	step("latest soft-deleted", "", "", true)
	must(kv.Undelete(ctx, "app/db", []int{3}))
	step("latest undeleted", "3", "2", false)
	must(kv.DeleteVersions(ctx, "app/db", []int{2}))
	step("2 soft-deleted", "3", "1", false)
	must(kv.Destroy(ctx, "app/db", []int{1}))
	step("2 deleted, 1 destroyed", "3", "", false)
	must(kv.Undelete(ctx, "app/db", []int{2}))
	step("2 undeleted", "3", "2", false)
	must(kv.Destroy(ctx, "app/db", []int{3}))
	step("latest destroyed", "", "", true)
	write()
	step("version 4 over a destroyed 3", "4", "2", false)
	must(kv.Destroy(ctx, "app/db", []int{2}))
	step("4 with every earlier version gone", "4", "", false)
	write()
	step("version 5", "5", "4", false)
	must(kv.DeleteMetadata(ctx, "app/db"))
	step("metadata deleted", "", "", true)
}

// TestValues checks the value served for a KV secret (its data as compact
// JSON) and the Store's field selectors over it, with the previous version.
func TestValues(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	put(t, root, "secret", "mcp/db", map[string]any{"user": "app", "password": "first<&>", "port": 5432, "tls": map[string]any{"verify": true}})
	put(t, root, "secret", "mcp/db", map[string]any{"user": "app", "password": "second", "port": 6432, "tls": map[string]any{"verify": false}})
	c, _ := newClient(t, v, v.RootToken)
	st := newStore(t, newSource(t, c))

	whole, err := st.Versions(ctx, "vault://secret/mcp/db")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := whole.Current.Reveal(), `{"password":"second","port":6432,"tls":{"verify":false},"user":"app"}`; got != want {
		t.Fatalf("whole value = %s, want %s", got, want)
	}
	if got, want := whole.Previous.Reveal(), `{"password":"first<&>","port":5432,"tls":{"verify":true},"user":"app"}`; got != want {
		t.Fatalf("whole previous value = %s, want %s", got, want)
	}
	for ref, want := range map[string][2]string{
		"vault://secret/mcp/db#password":                 {"second", "first<&>"},
		"vault://secret/mcp/db#port":                     {"6432", "5432"},
		"vault://secret/mcp/db#/tls/verify":              {"false", "true"},
		"vault://secret/mcp/db?field=password":           {"second", "first<&>"},
		"vault://secret/mcp/db?field=tls#verify":         {"false", "true"},
		"vault://secret/mcp/db?field=port":               {"6432", "5432"},
		"vault:///secret/mcp/db?field=user":              {"app", "app"},
		"vault://secret/mcp/db?field=password#/notthere": {"", ""},
	} {
		got, err := st.Versions(ctx, ref)
		if want[0] == "" {
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", ref, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if got.Current.Reveal() != want[0] || got.Previous.Reveal() != want[1] {
			t.Errorf("%s = %q, %q; want %q, %q", ref, got.Current.Reveal(), got.Previous.Reveal(), want[0], want[1])
		}
		if got.Current.Version() != "2" || got.Previous.Version() != "1" {
			t.Errorf("%s: versions %q, %q", ref, got.Current.Version(), got.Previous.Version())
		}
	}
	if _, err := st.Get(ctx, "vault://secret/mcp/db?field=nope"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("missing field: %v", err)
	}
	if _, err := st.Get(ctx, "vault://secret/mcp/db?version=1"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("unknown query parameter: %v", err)
	}
}

// TestMounts checks mount detection (nested mounts, KV v1 and v2, a token
// limited by policy), its errors, and that a declared mount is not asked.
func TestMounts(t *testing.T) {
	v := vaulttest.Start(t)
	v.MountKV(t, "team/kv", 2)
	v.MountKV(t, "legacy", 1)
	root := v.Client(t)
	ctx := testCtx(t)
	put(t, root, "team/kv", "app/db", map[string]any{"pw": "v2"})
	if err := root.KVv1("legacy").Put(ctx, "app/db", map[string]any{"pw": "v1"}); err != nil {
		t.Fatal(err)
	}
	v.WritePolicy(t, "mounts", readPolicy("team/kv", "app/")+`path "legacy/app/*" { capabilities = ["read"] }`)
	method := appRole(t, v, "mounts", []string{"mounts"}, time.Hour, 2*time.Hour)

	c, reqs := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method))
	got, err := src.Fetch(ctx, "team/kv/app/db?field=pw")
	if err != nil || got.Current.Reveal() != "v2" || got.Current.Version() != "1" {
		t.Fatalf("KV v2 under a nested mount: %v", err)
	}
	got, err = src.Fetch(ctx, "legacy/app/db?field=pw")
	if err != nil || got.Current.Reveal() != "v1" || got.Current.Version() != secrets.ContentVersion([]byte("v1")) || !got.Previous.IsZero() {
		t.Fatalf("KV v1: %v", err)
	}
	reqs.take()
	// Detected once per mount.
	if _, err := src.Fetch(ctx, "team/kv/app/db"); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs.take() {
		if strings.Contains(r, "sys/internal/ui/mounts") {
			t.Fatalf("mount detected again: %s", r)
		}
	}

	// A key under no mount, or under a mount the token cannot reach.
	for _, key := range []string{"nomount/app/db", "secret/app/db"} {
		_, err := src.Fetch(ctx, key)
		if !errors.Is(err, secrets.ErrPermission) || !strings.Contains(err.Error(), "WithMount") {
			t.Errorf("%s: err = %v, want ErrPermission with a hint", key, err)
		}
	}
	// A mount that is not KV.
	rc, _ := newClient(t, v, v.RootToken)
	rootSrc := newSource(t, rc)
	if _, err := rootSrc.Fetch(ctx, "cubbyhole/x"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("cubbyhole: err = %v, want ErrInvalid", err)
	}
	if _, err := rootSrc.Fetch(ctx, "team/kv"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("a mount's own path: err = %v, want ErrInvalid", err)
	}

	// Declared mounts are not detected: a policy without any access to
	// sys/internal/ui/mounts is enough, and no such request is sent.
	c2, reqs2 := newClient(t, v, "")
	src2 := newSource(t, c2, vault.WithAuth(method), vault.WithMount("team/kv", 2), vault.WithMount("legacy", 1))
	for _, key := range []string{"team/kv/app/db", "legacy/app/db"} {
		if _, err := src2.Fetch(ctx, key); err != nil {
			t.Fatalf("%s with a declared mount: %v", key, err)
		}
	}
	if slices.ContainsFunc(reqs2.take(), func(r string) bool { return strings.Contains(r, "sys/internal/ui/mounts") }) {
		t.Fatal("a declared mount was detected")
	}
}

// TestPollingCost counts the requests behind each operation.
func TestPollingCost(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)
	put(t, root, "secret", "app/db", map[string]any{"pw": "1"})
	put(t, root, "secret", "app/db", map[string]any{"pw": "2"})
	c, reqs := newClient(t, v, v.RootToken)
	src := newSource(t, c)

	first, err := src.Fetch(ctx, "secret/app/db")
	if err != nil {
		t.Fatal(err)
	}
	wantRequests(t, "first Fetch", reqs.take(),
		"GET /v1/auth/token/lookup-self",
		"GET /v1/sys/internal/ui/mounts/secret/app/db",
		"GET /v1/secret/metadata/app/db",
		"GET /v1/secret/data/app/db", // version 2
		"GET /v1/secret/data/app/db", // version 1
	)
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "secret/app/db", Known: first})
	if r.Err != nil || !r.Unchanged {
		t.Fatalf("unchanged poll: %+v", r)
	}
	wantRequests(t, "unchanged poll", reqs.take(), "GET /v1/secret/metadata/app/db")

	put(t, root, "secret", "app/db", map[string]any{"pw": "3"})
	reqs.take()
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "secret/app/db", Known: first})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Version() != "3" || r.Versions.Previous.Version() != "2" ||
		!r.Versions.Previous.Equal(first.Current) {
		t.Fatalf("poll after a rotation: %+v", r)
	}
	wantRequests(t, "poll after a rotation", reqs.take(),
		"GET /v1/secret/metadata/app/db",
		"GET /v1/secret/data/app/db") // version 3 only: 2 is held
	if _, err := src.Fetch(ctx, "secret/app/db"); err != nil {
		t.Fatal(err)
	}
	wantRequests(t, "a later Fetch", reqs.take(),
		"GET /v1/secret/metadata/app/db", "GET /v1/secret/data/app/db", "GET /v1/secret/data/app/db")
}

func wantRequests(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s sent\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
