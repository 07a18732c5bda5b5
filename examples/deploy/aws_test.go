package deploy_test

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/smtest"
)

const awsrotationPkg = "github.com/rotorhq/rotor/examples/awsrotation"

// lambdaRuntime is the Lambda Runtime API, as the provided.al2023 runtime
// serves it to a function's bootstrap: the function asks for the next
// event, handles it and posts the result. The test hands it one event at a
// time; once stopped, it answers the next request for an event with an
// error, which ends the function's process.
type lambdaRuntime struct {
	srv     *httptest.Server
	events  chan []byte
	results chan error
	stop    chan struct{}
	seq     int
	mu      sync.Mutex
}

func newLambdaRuntime(t *testing.T) *lambdaRuntime {
	r := &lambdaRuntime{events: make(chan []byte), results: make(chan error, 1), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		select {
		case ev := <-r.events:
			r.mu.Lock()
			r.seq++
			id := fmt.Sprintf("req-%d", r.seq)
			r.mu.Unlock()
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(5*time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:mcp-db-rotation-rotation")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
			w.Write(ev)
		case <-r.stop:
			http.Error(w, "the test is over", http.StatusGone)
		case <-req.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusAccepted)
		r.results <- nil
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		r.results <- fmt.Errorf("the function failed: %s", b)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		r.results <- fmt.Errorf("the function failed to start: %s", b)
	})
	r.srv = httptest.NewServer(mux)
	return r
}

// invoke hands the function one event and returns its outcome.
func (r *lambdaRuntime) invoke(t *testing.T, ev any, done <-chan error) error {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r.events <- b:
	case err := <-done:
		t.Fatalf("the function exited: %v", err)
	}
	select {
	case err := <-r.results:
		return err
	case err := <-done:
		t.Fatalf("the function exited: %v", err)
	}
	return nil
}

// rotateThroughLambda runs the built function as the runtime runs it,
// against the Secrets Manager test server and the test's PostgreSQL, and
// sends it the four steps of one rotation of a secret in scheme. It
// returns the operations the function called, with their counts.
func rotateThroughLambda(t *testing.T, bin, scheme string) map[string]int {
	t.Helper()
	ctx := ctxT(t)
	pg := startDB(t)
	sm := smtest.NewServer(t)
	client := sm.Client()
	role := fmt.Sprintf("lambda_%s_%d", scheme[:3], os.Getpid())
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, r := range []string{role, role + "_clone"} {
		_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+r)
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'lambda-old-pw'"); err != nil {
		t.Fatal(err)
	}
	secret := map[string]any{"engine": "postgres", "host": pg.Host, "port": pg.Port, "username": role,
		"password": "lambda-old-pw", "dbname": "postgres", "ssl": false}
	if scheme == "alternating" {
		master, _ := json.Marshal(map[string]any{"engine": "postgres", "host": pg.Host, "port": pg.Port,
			"username": "postgres", "password": pg.Password, "dbname": "postgres", "ssl": false})
		out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db/master"), SecretString: aws.String(string(master))})
		if err != nil {
			t.Fatal(err)
		}
		secret["masterarn"] = aws.ToString(out.ARN)
	}
	value, _ := json.Marshal(secret)
	out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db/app"), SecretString: aws.String(string(value))})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	rot, err := client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:mcp-db-rotation-rotation"),
		RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	if err != nil {
		t.Fatal(err)
	}
	token := aws.ToString(rot.VersionId)

	rt := newLambdaRuntime(t)
	defer rt.srv.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(rt.srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=mcp-db-rotation-rotation",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=test-secret-key",
		"AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir(),
		"SECRETS_MANAGER_ENDPOINT=" + sm.URL,
		"ROTATION_SCHEME=" + scheme,
		"SSL_MODE=disable",
	}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		close(rt.stop)
		select {
		case <-done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	sm.ResetCalls()
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		ev := map[string]string{"SecretId": arn, "ClientRequestToken": token, "Step": step}
		if err := rt.invoke(t, ev, done); err != nil {
			t.Fatalf("%s %s: %v\n%s", scheme, step, err, stderr.String())
		}
	}
	calls := sm.Calls()

	// The rotation happened: AWSCURRENT is the new credential and logs in.
	cur, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil || aws.ToString(cur.VersionId) != token {
		t.Fatalf("%s: AWSCURRENT is %v (%v), want the rotation's %s", scheme, aws.ToString(cur.VersionId), err, token)
	}
	var c struct{ Username, Password string }
	_ = json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &c)
	cfg, _ := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", pg.Host, pg.Port))
	cfg.User, cfg.Password = c.Username, c.Password
	login, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: the new credential does not log in: %v", scheme, err)
	}
	login.Close(ctx)
	if strings.Contains(stderr.String(), c.Password) {
		t.Fatalf("%s: the function's log holds the password", scheme)
	}
	return calls
}

// policyActions returns the actions the statements of a function's
// Policies allow, by statement (an !If statement counts with its true
// branch).
func policyActions(t *testing.T, fn any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range list(t, fn, "Properties", "Policies") {
		for _, st := range list(t, p, "Statement") {
			if cond, ok := st.(map[string]any)["Fn::If"]; ok {
				st = cond.([]any)[1]
			}
			if at(t, st, "Effect") != "Allow" {
				t.Errorf("a statement that does not allow: %v", st)
			}
			var actions []string
			switch a := at(t, st, "Action").(type) {
			case string:
				actions = []string{a}
			case []any:
				actions = stringList(t, a)
			}
			sid := str(t, st, "Sid")
			out[sid] = append(out[sid], actions...)
		}
	}
	return out
}

// TestAWSRotationFunction: the template's function is the one
// examples/awsrotation builds (handler bootstrap, provided.al2023, arm64,
// built with the lambda.norpc tag), its environment names variables the
// function reads, and its policy allows exactly the Secrets Manager
// operations the built function calls when the runtime sends it a whole
// rotation, in both schemes, against the Secrets Manager test server.
func TestAWSRotationFunction(t *testing.T) {
	docs := readYAML(t, filepath.Join("aws", "template.yaml"))
	tmpl := docs[0]
	if tmpl["Transform"] != "AWS::Serverless-2016-10-31" {
		t.Fatalf("Transform %v", tmpl["Transform"])
	}
	resources := at(t, tmpl, "Resources").(map[string]any)
	fn := resources["RotationFunction"]
	if str(t, fn, "Type") != "AWS::Serverless::Function" {
		t.Fatal("RotationFunction is not a function")
	}
	props := at(t, fn, "Properties")
	if str(t, props, "Handler") != "bootstrap" || str(t, props, "Runtime") != "provided.al2023" ||
		fmt.Sprint(at(t, props, "Architectures")) != "[arm64]" {
		t.Errorf("handler %v, runtime %v, architectures %v", at(t, props, "Handler"), at(t, props, "Runtime"), at(t, props, "Architectures"))
	}

	// The build the template and README.md give, run as they give it.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join("aws", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	buildLine := "GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o examples/deploy/aws/" + strings.TrimSuffix(str(t, props, "CodeUri"), "/") + "/bootstrap ./examples/awsrotation"
	for name, text := range map[string][]byte{"README.md": readme, "template.yaml": header} {
		if !strings.Contains(string(text), buildLine) {
			t.Errorf("%s does not give the build %q", name, buildLine)
		}
	}
	arm := build(t, awsrotationPkg, "lambda.norpc", "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if filepath.Base(arm) != "awsrotation" {
		t.Fatal(arm)
	}
	f, err := elf.Open(arm)
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machine
	f.Close()
	info, err := buildinfo.ReadFile(arm)
	if err != nil {
		t.Fatal(err)
	}
	var tags string
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			tags = s.Value
		}
	}
	if machine != elf.EM_AARCH64 || tags != "lambda.norpc" {
		t.Errorf("the function builds for %v with tags %q", machine, tags)
	}

	// The environment: names the function reads, values it accepts.
	read := getenvNames(t, filepath.Join("..", "awsrotation", "main.go"))
	for name := range at(t, props, "Environment", "Variables").(map[string]any) {
		if !read[name] {
			t.Errorf("the template sets %s, which the function does not read (it reads %v)", name, read)
		}
	}
	schemes := stringList(t, list(t, tmpl, "Parameters", "RotationScheme", "AllowedValues"))

	// The operations, measured.
	host := build(t, awsrotationPkg, "lambda.norpc")
	called := map[string]bool{}
	for _, scheme := range schemes {
		for op := range rotateThroughLambda(t, host, scheme) {
			called["secretsmanager:"+op] = true
		}
	}
	var want []string
	for op := range called {
		want = append(want, op)
	}
	sort.Strings(want)

	allowed := policyActions(t, fn)
	var got []string
	for _, actions := range allowed {
		for _, a := range actions {
			if strings.HasPrefix(a, "secretsmanager:") && !slices.Contains(got, a) {
				got = append(got, a)
			}
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the policy allows %v; the function calls %v", got, want)
	}
	t.Logf("the function calls %v", want)
	for sid, actions := range allowed {
		for _, a := range actions {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s allows %s: list actions one by one", sid, a)
			}
		}
	}
	if r := at(t, fn, "Properties", "Policies", 0, "Statement", 0, "Resource"); fmt.Sprint(r) != fmt.Sprint(map[string]any{"Ref": "SecretArn"}) {
		t.Errorf("the rotated secret's statement applies to %v, not the secret", r)
	}
	perm := resources["SecretsManagerInvoke"]
	if str(t, perm, "Properties", "Principal") != "secretsmanager.amazonaws.com" || str(t, perm, "Properties", "Action") != "lambda:InvokeFunction" {
		t.Errorf("the invoke permission: %v", perm)
	}
	sched := resources["RotationSchedule"]
	if fmt.Sprint(at(t, sched, "Properties", "RotationLambdaARN")) != fmt.Sprint(map[string]any{"Fn::GetAtt": []any{"RotationFunction", "Arn"}}) {
		t.Errorf("the rotation schedule invokes %v", at(t, sched, "Properties", "RotationLambdaARN"))
	}
}

// getenvNames returns the string constants a Go file passes as the name
// of an environment variable: to getenv, os.Getenv, or the function's
// helper flag.
func getenvNames(t *testing.T, file string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		name := ""
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			name = fn.Name
		case *ast.SelectorExpr:
			name = fn.Sel.Name
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		// getenv(NAME), os.Getenv(NAME), and flag(NAME, default), the
		// function's helper for its true/false variables.
		if (name == "getenv" || name == "Getenv" || name == "flag") && ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			out[s] = true
		}
		return true
	})
	return out
}

// TestAWSReloadOnRotation: the EventBridge rule matches Secrets Manager's
// RotationSucceeded for the rotated secret and starts the runbook, whose one
// step sends kill -HUP through SSM Run Command, with MaxConcurrency and
// MaxErrors, to the process the server's build is named after; the roles
// allow that and nothing wider. (That the server reloads on SIGHUP, runServer
// checks on the real binary.)
func TestAWSReloadOnRotation(t *testing.T) {
	tmpl := readYAML(t, filepath.Join("aws", "template.yaml"))[0]
	res := at(t, tmpl, "Resources").(map[string]any)
	rule := res["ReloadOnRotation"]
	pattern := at(t, rule, "Properties", "EventPattern")
	if fmt.Sprint(at(t, pattern, "source")) != "[aws.secretsmanager]" ||
		fmt.Sprint(at(t, pattern, "detail-type")) != "[AWS Service Event via CloudTrail]" ||
		fmt.Sprint(at(t, pattern, "detail", "eventName")) != "[RotationSucceeded]" ||
		fmt.Sprint(at(t, pattern, "detail", "additionalEventData", "SecretId")) != "[map[Ref:SecretArn]]" {
		t.Errorf("event pattern %v", pattern)
	}
	target := at(t, rule, "Properties", "Targets", 0)
	arn := str(t, target, "Arn", "Fn::Sub")
	if !strings.Contains(arn, ":automation-definition/${ReloadRunbook}:$DEFAULT") {
		t.Errorf("the rule's target %s is not the runbook", arn)
	}
	if !strings.Contains(str(t, target, "Input", "Fn::Sub"), `"AutomationAssumeRole": ["${ReloadAutomationRole.Arn}"]`) {
		t.Errorf("the rule passes %v", at(t, target, "Input"))
	}

	doc := at(t, res["ReloadRunbook"], "Properties")
	if str(t, doc, "DocumentType") != "Automation" {
		t.Fatal("the runbook is not an Automation document")
	}
	steps := list(t, doc, "Content", "mainSteps")
	if len(steps) != 1 || at(t, steps[0], "action") != "aws:runCommand" {
		t.Fatalf("steps %v", steps)
	}
	in := at(t, steps[0], "inputs")
	if str(t, in, "DocumentName") != "AWS-RunShellScript" {
		t.Errorf("the step runs %v", at(t, in, "DocumentName"))
	}
	for _, k := range []string{"MaxConcurrency", "MaxErrors"} {
		if !regexp.MustCompile(`^[0-9]+%?$`).MatchString(str(t, in, k)) {
			t.Errorf("%s is %v", k, at(t, in, k))
		}
	}
	commands := strings.Join(stringList(t, list(t, in, "Parameters", "commands")), "\n")
	name := filepath.Base(build(t, mcpserverPkg, ""))
	if !strings.Contains(commands, "kill -HUP") || !strings.Contains(commands, "pgrep -o -x "+name) {
		t.Errorf("the commands do not send SIGHUP to %s:\n%s", name, commands)
	}
	tag := at(t, in, "Targets", 0)
	tagKey := strings.TrimPrefix(str(t, tag, "Key"), "tag:")

	// The automation role may send that command to instances with that tag.
	auto := list(t, res["ReloadAutomationRole"], "Properties", "Policies", 0, "PolicyDocument", "Statement")
	scoped := false
	for _, st := range auto {
		if at(t, st, "Action") == "ssm:SendCommand" {
			if c, ok := st.(map[string]any)["Condition"]; ok {
				scoped = fmt.Sprint(at(t, c, "StringEquals", "ssm:resourceTag/"+tagKey)) == fmt.Sprint(at(t, tag, "Values", 0))
			} else if !strings.Contains(str(t, st, "Resource", "Fn::Sub"), "document/AWS-RunShellScript") {
				t.Errorf("ssm:SendCommand without a condition on %v", at(t, st, "Resource"))
			}
		}
	}
	if !scoped {
		t.Error("ssm:SendCommand on instances is not scoped to the reload tag")
	}
	events := list(t, res["ReloadEventsRole"], "Properties", "Policies", 0, "PolicyDocument", "Statement")
	if at(t, events[0], "Action") != "ssm:StartAutomationExecution" || at(t, events[1], "Action") != "iam:PassRole" ||
		fmt.Sprint(at(t, events[1], "Resource")) != fmt.Sprint(map[string]any{"Fn::GetAtt": []any{"ReloadAutomationRole", "Arn"}}) {
		t.Errorf("the events role: %v", events)
	}
}
