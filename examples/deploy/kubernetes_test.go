package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const rotatorPkg = "github.com/rotorhq/rotor/examples/rotator"

// container returns the container called name in a pod template.
func container(t *testing.T, pod any, field, name string) map[string]any {
	t.Helper()
	for _, c := range list(t, pod, "spec", field) {
		if at(t, c, "name") == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("no %s %s", field, name)
	return nil
}

// volumeOf returns the volume mounted at mountPath in container c of pod.
func volumeOf(t *testing.T, pod any, c map[string]any, mountPath string) map[string]any {
	t.Helper()
	for _, m := range list(t, c, "volumeMounts") {
		if at(t, m, "mountPath") != mountPath {
			continue
		}
		for _, v := range list(t, pod, "spec", "volumes") {
			if at(t, v, "name") == at(t, m, "name") {
				return v.(map[string]any)
			}
		}
	}
	t.Fatalf("nothing is mounted at %s", mountPath)
	return nil
}

func containerPort(t *testing.T, c map[string]any, name string) string {
	t.Helper()
	for _, p := range list(t, c, "ports") {
		if at(t, p, "name") == name {
			return fmt.Sprint(at(t, p, "containerPort"))
		}
	}
	t.Fatalf("no port %s", name)
	return ""
}

// checkMetadata: every object names itself and the namespace mcp.
func checkMetadata(t *testing.T, file string, docs []map[string]any) {
	t.Helper()
	for _, d := range docs {
		if d["apiVersion"] == nil || d["kind"] == nil || at(t, d, "metadata", "name") == nil {
			t.Errorf("%s: an object without apiVersion, kind or name: %v", file, d)
		}
		if ns := at(t, d, "metadata", "namespace"); ns != "mcp" {
			t.Errorf("%s: %s %s is in namespace %v, not mcp", file, d["kind"], at(t, d, "metadata", "name"), ns)
		}
	}
}

// checkServerPod checks the mcpserver container of a Deployment: its flags
// start the real server, the readiness probe asks the path and port of its
// status endpoint, its credential files are mounted where -secrets says,
// and the volume holds the files the server reads.
func checkServerPod(t *testing.T, dep map[string]any) (args []string, secretsDir string, files []string, run checked) {
	t.Helper()
	pod := at(t, dep, "spec", "template")
	c := container(t, pod, "containers", "mcpserver")
	args = stringList(t, list(t, c, "args"))
	run = runServer(t, args)

	if p := str(t, c, "readinessProbe", "httpGet", "path"); p != run.statusPath {
		t.Errorf("the readiness probe asks %s; the server serves its status at %s", p, run.statusPath)
	}
	statusAddr, _ := flagValue(args, "status")
	_, statusPort, _ := strings.Cut(statusAddr, ":")
	probePort := str(t, c, "readinessProbe", "httpGet", "port")
	if containerPort(t, c, probePort) != statusPort {
		t.Errorf("the readiness probe's port %s is not -status's %s", probePort, statusAddr)
	}
	secretsDir, _ = flagValue(args, "secrets")
	vol := volumeOf(t, pod, c, secretsDir)
	for f := range run.files {
		files = append(files, f)
	}
	sort.Strings(files)
	if len(files) != 3 {
		t.Errorf("the server read %v", files)
	}
	if labels := at(t, pod, "metadata", "labels"); fmt.Sprint(labels) != fmt.Sprint(at(t, dep, "spec", "selector", "matchLabels")) {
		t.Errorf("the pod's labels %v are not the selector's", labels)
	}
	_ = vol
	return args, secretsDir, files, run
}

// TestKubernetesSecretVolume: the Deployment of mcpserver.yaml starts the
// real server with its flags and probes its status endpoint; the headless
// Service lists every pod's status port; the CronJob of rotator.yaml runs
// the real rotator with flags it accepts, naming that Service, the key as
// the pods read it and its own store, and may patch only the Secret the
// pods mount.
func TestKubernetesSecretVolume(t *testing.T) {
	docs := readYAML(t, filepath.Join("kubernetes", "mcpserver.yaml"))
	checkMetadata(t, "mcpserver.yaml", docs)
	dep := object(t, docs, "Deployment", "mcpserver")
	pod := at(t, dep, "spec", "template")
	args, secretsDir, files, run := checkServerPod(t, dep)
	c := container(t, pod, "containers", "mcpserver")

	vol := volumeOf(t, pod, c, secretsDir)
	secretName := str(t, vol, "secret", "secretName")
	if _, ok := vol["secret"].(map[string]any)["items"]; ok {
		t.Error("the Secret volume lists items: every key of the Secret should be projected")
	}
	for _, m := range list(t, c, "volumeMounts") {
		if at(t, m, "mountPath") == secretsDir && at(t, m, "subPath") != nil {
			t.Error("a subPath mount is never updated")
		}
	}

	// Metrics: the scrape annotations name the -metrics port and path.
	metricsAddr, _ := flagValue(args, "metrics")
	ann := at(t, pod, "metadata", "annotations").(map[string]any)
	if _, port, _ := strings.Cut(metricsAddr, ":"); ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, -metrics %s", ann, metricsAddr)
	}
	// Every metric README.md and the files name is one the server exports.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := metricNames(string(readme))
	if len(named) == 0 {
		t.Error("README.md names no metric")
	}
	for _, m := range named {
		if !strings.Contains(run.metrics, "# TYPE "+m+" ") {
			t.Errorf("README.md names %s, which the server does not export:\n%s", m, run.metrics)
		}
	}

	// The headless Service: every pod, ready or not, on the status port.
	status := object(t, docs, "Service", "mcpserver-status")
	if at(t, status, "spec", "clusterIP") != "None" || at(t, status, "spec", "publishNotReadyAddresses") != true {
		t.Error("mcpserver-status is not headless with publishNotReadyAddresses")
	}
	if fmt.Sprint(at(t, status, "spec", "selector")) != fmt.Sprint(at(t, pod, "metadata", "labels")) {
		t.Error("mcpserver-status does not select the server's pods")
	}
	svcPort := fmt.Sprint(at(t, status, "spec", "ports", 0, "port"))
	if tp := str(t, status, "spec", "ports", 0, "targetPort"); containerPort(t, c, tp) != svcPort {
		t.Errorf("mcpserver-status forwards to %s, which is not port %s", tp, svcPort)
	}
	mcp := object(t, docs, "Service", "mcpserver")
	if tp := str(t, mcp, "spec", "ports", 0, "targetPort"); tp != "mcp" {
		t.Errorf("the MCP Service forwards to %s", tp)
	}

	// The CronJob.
	rdocs := readYAML(t, filepath.Join("kubernetes", "rotator.yaml"))
	checkMetadata(t, "rotator.yaml", rdocs)
	cron := object(t, rdocs, "CronJob", "rotor-rotator")
	rpod := at(t, cron, "spec", "jobTemplate", "spec", "template")
	rc := container(t, rpod, "containers", "rotator")
	rargs := stringList(t, list(t, rc, "args"))
	store, _ := flagValue(rargs, "secrets")
	key, _ := flagValue(rargs, "key")
	if !slices.Contains(files, key) {
		t.Errorf("the rotator rotates %s, which the server does not read (%v)", key, files)
	}
	dns, _ := flagValue(rargs, "consumer-dns")
	host, port, p := hostPort(t, dns)
	if want := "mcpserver-status.mcp.svc.cluster.local"; host != want || port != svcPort || p != run.statusPath {
		t.Errorf("-consumer-dns %s; want http://%s:%s%s", dns, want, svcPort, run.statusPath)
	}
	ckey, _ := flagValue(rargs, "consumer-key")
	if want := "file://" + path.Join(secretsDir, key); ckey != want || !run.keys["file://DIR/"+key] {
		t.Errorf("-consumer-key %s; the pods' Stores name it %s (keys seen: %v)", ckey, want, run.keys)
	}
	if v, _ := flagValue(rargs, "consumer-version"); v != "id" {
		t.Errorf("-consumer-version %s: the pods read the rotator's bytes, whose file source ids they share", v)
	}
	if at(t, volumeOf(t, rpod, rc, store), "persistentVolumeClaim", "claimName") != "rotor-rotation" {
		t.Error("the rotator's store is not the PVC rotor-rotation")
	}
	object(t, rdocs, "PersistentVolumeClaim", "rotor-rotation")
	if v, _ := flagValue(rargs, "roles"); v == "" {
		t.Error("a Secret volume delivers late: the CronJob must alternate roles")
	}
	var envNames []string
	for _, e := range list(t, rc, "env") {
		envNames = append(envNames, str(t, e, "name"))
	}
	checkRotatorArgs(t, rargs, envNames, map[string]string{"secrets": "file"})
	checkRotatorTTL(t, rargs, args, 0)

	// The publisher patches the Secret the pods mount, from the rotator's
	// file, and may touch nothing else.
	pub := container(t, rpod, "initContainers", "publish")
	if at(t, pub, "restartPolicy") != "Always" {
		t.Error("the publisher is not a sidecar")
	}
	script := strings.Join(stringList(t, list(t, pub, "args")), "\n")
	for _, want := range []string{"patch secret " + secretName, path.Join(store, key), `{"data":{"` + key + `"`} {
		if !strings.Contains(script, want) {
			t.Errorf("the publisher's script does not say %q", want)
		}
	}
	if at(t, volumeOf(t, rpod, pub, store), "persistentVolumeClaim", "claimName") != "rotor-rotation" {
		t.Error("the publisher does not read the rotator's store")
	}
	role := object(t, rdocs, "Role", "rotor-rotator")
	rule := at(t, role, "rules", 0)
	if fmt.Sprint(at(t, rule, "resourceNames")) != fmt.Sprint([]any{secretName}) || fmt.Sprint(at(t, rule, "verbs")) != "[get patch]" || len(list(t, role, "rules")) != 1 {
		t.Errorf("the Role grants %v", role["rules"])
	}
	binding := object(t, rdocs, "RoleBinding", "rotor-rotator")
	if at(t, binding, "subjects", 0, "name") != at(t, rpod, "spec", "serviceAccountName") {
		t.Error("the RoleBinding does not bind the CronJob's service account")
	}
	if at(t, rpod, "spec", "restartPolicy") != "Never" {
		t.Error("podFailurePolicy needs restartPolicy Never")
	}
	codes := fmt.Sprint(at(t, cron, "spec", "jobTemplate", "spec", "podFailurePolicy", "rules", 0, "onExitCodes", "values"))
	if codes != "[2 3]" {
		t.Errorf("the Job ends on exit codes %s", codes)
	}
}

// TestKubernetesCSIVolume: the CSI variant mounts, through its
// SecretProviderClass, exactly the files the server reads, where -secrets
// says, and starts the real server with its flags.
func TestKubernetesCSIVolume(t *testing.T) {
	docs := readYAML(t, filepath.Join("kubernetes", "mcpserver-csi.yaml"))
	checkMetadata(t, "mcpserver-csi.yaml", docs)
	dep := object(t, docs, "Deployment", "mcpserver")
	_, secretsDir, files, _ := checkServerPod(t, dep)
	pod := at(t, dep, "spec", "template")
	vol := volumeOf(t, pod, container(t, pod, "containers", "mcpserver"), secretsDir)
	if str(t, vol, "csi", "driver") != "secrets-store.csi.k8s.io" {
		t.Errorf("volume %v", vol)
	}
	spcName := str(t, vol, "csi", "volumeAttributes", "secretProviderClass")
	spc := object(t, docs, "SecretProviderClass", spcName)
	var objects []map[string]any
	if err := yaml.Unmarshal([]byte(str(t, spc, "spec", "parameters", "objects")), &objects); err != nil {
		t.Fatalf("the SecretProviderClass's objects: %v", err)
	}
	var aliases []string
	for _, o := range objects {
		if o["objectType"] != "secretsmanager" || o["objectName"] == "" {
			t.Errorf("object %v", o)
		}
		aliases = append(aliases, fmt.Sprint(o["objectAlias"]))
	}
	sort.Strings(aliases)
	if fmt.Sprint(aliases) != fmt.Sprint(files) {
		t.Errorf("the CSI volume holds %v; the server reads %v", aliases, files)
	}
	if at(t, pod, "spec", "serviceAccountName") != at(t, object(t, docs, "ServiceAccount", "mcpserver"), "metadata", "name") {
		t.Error("the pod does not run as the annotated service account")
	}
}

// checkRotatorArgs runs the built rotator with args, the paths of its store
// (-secrets) moved to a directory of the test's holding a credential file,
// its database moved to a port nobody listens on and env set: it must get
// past its flags and fail at the first thing it does, logging in to the
// database (-secrets) or reading the record from Vault (-vault), with exit
// status 1, not 2 (bad flags). It also checks that env names variables the
// rotator documents.
func checkRotatorArgs(t *testing.T, args, env []string, store map[string]string) {
	t.Helper()
	bin := build(t, rotatorPkg, "")
	help, _ := exec.CommandContext(ctxT(t), bin, "-h").CombinedOutput()
	for _, e := range env {
		if !strings.Contains(string(help), e) {
			t.Errorf("the rotator's -h does not name %s", e)
		}
	}
	runArgs := slices.Clone(args)
	cmdEnv := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "VAULT_ADDR=http://127.0.0.1:1", "ROTOR_ADMIN_DSN=postgres://admin@127.0.0.1:1/x"}
	want := "at load record"
	if _, ok := store["secrets"]; ok {
		dir := t.TempDir()
		key, ok := flagValue(args, "key")
		if !ok {
			key = "db.json"
		}
		if err := os.WriteFile(filepath.Join(dir, key), []byte(`{"username":"app_a","password":"x"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		runArgs = setFlag(runArgs, "secrets", dir)
		want = "at check"
	}
	runArgs = setFlag(runArgs, "db", "postgres://127.0.0.1:1/app?sslmode=disable&connect_timeout=5")
	cmd := exec.CommandContext(ctxT(t), bin, runArgs...)
	cmd.Env = cmdEnv
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), want) {
		t.Errorf("the rotator with %v: exit %d, want 1 failing %s:\n%s", args, code, want, out)
	}
}
