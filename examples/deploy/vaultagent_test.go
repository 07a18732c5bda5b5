package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hashicorp/hcl"
)

// readUnit reads a systemd unit file into its settings, by key (the keys of
// every section together; a repeated key keeps every value).
func readUnit(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", file, l)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// blocks returns the blocks called name of an HCL body decoded by hcl v1
// (a list of objects), and for a labelled block ("listener" "tcp") those
// under the label.
func blocks(t *testing.T, body map[string]any, name string, label ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	raw, _ := body[name].([]map[string]any)
	for _, b := range raw {
		if len(label) == 0 {
			out = append(out, b)
			continue
		}
		inner, _ := b[label[0]].([]map[string]any)
		out = append(out, inner...)
	}
	return out
}

// TestVaultAgent: the agent's configuration parses as HCL; its templates
// exist and write into the directory the server's unit passes as -secrets,
// the files the real server reads; the server's unit starts the real server
// and reloads it with kill -HUP; the rotator's unit starts the real rotator
// with flags it accepts, reaches Vault through the agent's listener, and
// asks the server's status endpoint for the file the template of its field
// renders.
func TestVaultAgent(t *testing.T) {
	dir := "vault-agent"
	text, err := os.ReadFile(filepath.Join(dir, "agent.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hcl.ParseBytes(text); err != nil {
		t.Fatalf("agent.hcl: %v", err)
	}
	var cfg map[string]any
	if err := hcl.Unmarshal(text, &cfg); err != nil {
		t.Fatalf("agent.hcl: %v", err)
	}
	if len(blocks(t, cfg, "auto_auth")) != 1 || len(blocks(t, blocks(t, cfg, "auto_auth")[0], "method")) != 1 {
		t.Error("agent.hcl has no auto_auth method")
	}
	if p := blocks(t, cfg, "api_proxy"); len(p) != 1 || p[0]["use_auto_auth_token"] != "force" {
		t.Errorf("api_proxy %v", p)
	}
	listeners := blocks(t, cfg, "listener", "tcp")
	if len(listeners) != 1 {
		t.Fatalf("listeners %v", cfg["listener"])
	}

	server := readUnit(t, filepath.Join(dir, "mcpserver.service"))
	exec := splitCommand(server["ExecStart"][0])
	if filepath.Base(exec[0]) != filepath.Base(build(t, mcpserverPkg, "")) {
		t.Errorf("the unit runs %s", exec[0])
	}
	if server["ExecReload"][0] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%s", server["ExecReload"][0])
	}
	run := runServer(t, exec[1:])
	secretsDir, _ := flagValue(exec[1:], "secrets")

	rendered := map[string]string{} // file name → template source
	for _, tb := range blocks(t, cfg, "template") {
		src, dst := fmt.Sprint(tb["source"]), fmt.Sprint(tb["destination"])
		if path.Dir(dst) != secretsDir {
			t.Errorf("a template writes %s, outside the server's -secrets %s", dst, secretsDir)
		}
		if _, err := os.Stat(filepath.Join(dir, path.Base(src))); err != nil {
			t.Errorf("template source %s: %v", src, err)
		}
		if _, err := template.New("").Funcs(template.FuncMap{"secret": func(string) (any, error) { return nil, nil }}).ParseFiles(filepath.Join(dir, path.Base(src))); err != nil {
			t.Errorf("%s: %v", src, err)
		}
		rendered[path.Base(dst)] = path.Base(src)
	}
	var names, files []string
	for n := range rendered {
		names = append(names, n)
	}
	for f := range run.files {
		files = append(files, f)
	}
	sort.Strings(names)
	sort.Strings(files)
	if fmt.Sprint(names) != fmt.Sprint(files) {
		t.Errorf("the agent renders %v; the server reads %v", names, files)
	}

	// The rotator.
	rot := readUnit(t, filepath.Join(dir, "rotor-rotator.service"))
	if _, err := os.Stat(filepath.Join(dir, "rotor-rotator.timer")); err != nil {
		t.Error("no timer for the rotator's unit")
	}
	var env []string
	vaultAddr := ""
	for _, e := range rot["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env = append(env, k)
		if k == "VAULT_ADDR" {
			vaultAddr = v
		}
	}
	u, err := url.Parse(vaultAddr)
	if err != nil || u.Host != fmt.Sprint(listeners[0]["address"]) || (u.Scheme == "http") != (listeners[0]["tls_disable"] == true) {
		t.Errorf("VAULT_ADDR %s; the agent listens on %v", vaultAddr, listeners[0])
	}
	rexec := splitCommand(rot["ExecStart"][0])
	if filepath.Base(rexec[0]) != filepath.Base(build(t, rotatorPkg, "")) {
		t.Errorf("the unit runs %s", rexec[0])
	}
	rargs := rexec[1:]
	checkRotatorArgs(t, rargs, env, map[string]string{"vault": ""})
	var render time.Duration
	for _, tc := range blocks(t, cfg, "template_config") {
		if d, err := time.ParseDuration(fmt.Sprint(tc["static_secret_render_interval"])); err == nil {
			render = d
		}
	}
	if render == 0 {
		t.Error("agent.hcl sets no static_secret_render_interval: how late the agent renders a new version is unknown")
	}
	checkRotatorTTL(t, rargs, exec[1:], render)

	vaultKey, _ := flagValue(rargs, "vault")
	p, q, _ := strings.Cut(vaultKey, "?")
	query, _ := url.ParseQuery(q)
	field := query.Get("field")
	mount, rel, _ := strings.Cut(p, "/")
	ckey, _ := flagValue(rargs, "consumer-key")
	cfile := path.Base(strings.TrimPrefix(ckey, "file://"))
	if ckey != "file://"+path.Join(secretsDir, cfile) || !run.keys["file://DIR/"+cfile] {
		t.Errorf("-consumer-key %s is not a key the server serves (%v)", ckey, run.keys)
	}
	tmpl, err := os.ReadFile(filepath.Join(dir, rendered[cfile]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`secret "%s/metadata/%s"`, mount, rel),
		fmt.Sprintf(`"%s/data/%s?version=%%s"`, mount, rel),
		fmt.Sprintf(`index .Data.data %q`, field),
	} {
		if !strings.Contains(string(tmpl), want) {
			t.Errorf("%s does not render field %q of %s: no %s", rendered[cfile], field, p, want)
		}
	}
	if v, _ := flagValue(rargs, "consumer-version"); v != "content" {
		t.Errorf("-consumer-version %s: the server reads the field as a file, whose id is its content's", v)
	}
	consumer, _ := flagValue(rargs, "consumer")
	statusAddr, _ := flagValue(exec[1:], "status")
	if _, port, sp := hostPort(t, consumer); !strings.HasSuffix(statusAddr, ":"+port) || sp != run.statusPath {
		t.Errorf("-consumer %s; the server's status is at %s%s", consumer, statusAddr, run.statusPath)
	}
}

// kv is a KV v2 secret as Vault serves it to a template: its versions and
// its custom metadata, where rotor's vault source keeps its marks.
type kv struct {
	data    map[int]string // version → the field's value
	deleted map[int]bool
	latest  int
	marks   map[string]string
}

// current is the version rotor's vault source serves as current (its
// package documentation states the rule): with rotor-current naming c, c,
// as long as every live version above it is the one rotor-pending names;
// otherwise, or without marks, the latest.
func (k *kv) current() int {
	c, err := strconv.Atoi(k.marks["rotor-current"])
	if err != nil || k.deleted[c] {
		return k.latest
	}
	for v := c + 1; v <= k.latest; v++ {
		if !k.deleted[v] && strconv.Itoa(v) != k.marks["rotor-pending"] {
			return k.latest
		}
	}
	return c
}

// secret answers a template's secret function as consul-template does:
// .Data of the metadata, or of a version's data.
func (k *kv) secret(mount, rel, field string) func(string) (any, error) {
	return func(p string) (any, error) {
		p, q, _ := strings.Cut(p, "?")
		switch p {
		case mount + "/metadata/" + rel:
			versions := map[string]any{}
			for v := 1; v <= k.latest; v++ {
				del := ""
				if k.deleted[v] {
					del = "2026-03-01T12:00:00Z"
				}
				versions[strconv.Itoa(v)] = map[string]any{"deletion_time": del, "destroyed": false}
			}
			var custom any
			if len(k.marks) > 0 {
				m := map[string]any{}
				for a, b := range k.marks {
					m[a] = b
				}
				custom = m
			}
			return struct{ Data map[string]any }{map[string]any{
				"current_version": json.Number(strconv.Itoa(k.latest)), "custom_metadata": custom, "versions": versions,
			}}, nil
		case mount + "/data/" + rel:
			query, _ := url.ParseQuery(q)
			v := k.latest
			if s := query.Get("version"); s != "" {
				v, _ = strconv.Atoi(s)
			}
			if k.deleted[v] || k.data[v] == "" {
				return nil, fmt.Errorf("no secret exists at %s", p)
			}
			return struct{ Data map[string]any }{map[string]any{"data": map[string]any{field: k.data[v]}}}, nil
		}
		return nil, fmt.Errorf("unexpected read of %s", p)
	}
}

// TestVaultAgentTemplateFollowsRotations renders the database template, as
// consul-template (in Vault Agent) does with Go's text/template, through
// the states a rotation leaves the secret in, staged, promoted, undone,
// and around plain writes: it always renders the version rotor's vault
// source serves as current, never a pending one.
func TestVaultAgentTemplateFollowsRotations(t *testing.T) {
	rot := readUnit(t, filepath.Join("vault-agent", "rotor-rotator.service"))
	vaultKey, _ := flagValue(splitCommand(rot["ExecStart"][0])[1:], "vault")
	p, q, _ := strings.Cut(vaultKey, "?")
	query, _ := url.ParseQuery(q)
	field := query.Get("field")
	mount, rel, _ := strings.Cut(p, "/")
	text, err := os.ReadFile(filepath.Join("vault-agent", field+".ctmpl"))
	if err != nil {
		t.Fatal(err)
	}
	k := &kv{data: map[int]string{}, deleted: map[int]bool{}, marks: map[string]string{}}
	tmpl, err := template.New(field).Funcs(template.FuncMap{"secret": k.secret(mount, rel, field)}).Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	write := func(v string) { k.latest++; k.data[k.latest] = v }
	steps := []struct {
		name string
		do   func()
	}{
		{"first write", func() { write(`{"password":"v1"}`) }},
		{"staged", func() {
			k.marks["rotor-current"], k.marks["rotor-pending"] = strconv.Itoa(k.current()), strconv.Itoa(k.latest+1)
			write(`{"password":"v2"}`)
		}},
		{"promoted", func() { k.marks["rotor-current"] = k.marks["rotor-pending"]; delete(k.marks, "rotor-pending") }},
		{"staged again", func() {
			k.marks["rotor-current"], k.marks["rotor-pending"] = strconv.Itoa(k.current()), strconv.Itoa(k.latest+1)
			write(`{"password":"v3"}`)
		}},
		{"discarded", func() {
			n, _ := strconv.Atoi(k.marks["rotor-pending"])
			k.deleted[n] = true
			delete(k.marks, "rotor-pending")
		}},
		{"staged after a discard", func() {
			k.marks["rotor-current"], k.marks["rotor-pending"] = strconv.Itoa(k.current()), strconv.Itoa(k.latest+1)
			write(`{"password":"v4"}`)
		}},
		{"promoted after a discard", func() { k.marks["rotor-current"] = k.marks["rotor-pending"]; delete(k.marks, "rotor-pending") }},
		{"plain write", func() { write(`{"password":"v5-by-hand"}`) }},
		{"staged after a plain write", func() {
			k.marks["rotor-current"], k.marks["rotor-pending"] = strconv.Itoa(k.current()), strconv.Itoa(k.latest+1)
			write(`{"password":"v6"}`)
		}},
		{"plain write while staged", func() { write(`{"password":"v7-by-hand"}`) }},
	}
	for _, s := range steps {
		s.do()
		var out strings.Builder
		if err := tmpl.Execute(&out, nil); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if want := k.data[k.current()]; out.String() != want {
			t.Errorf("%s: rendered %q, rotor serves %q (version %d)", s.name, out.String(), want, k.current())
		}
		if n, err := strconv.Atoi(k.marks["rotor-pending"]); err == nil && n == k.latest && out.String() == k.data[n] {
			t.Errorf("%s: rendered the pending version %d", s.name, n)
		}
	}
}
