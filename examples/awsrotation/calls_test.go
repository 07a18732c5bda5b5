package main

import (
	"maps"
	"testing"
)

// TestCallsPerRotation measures what one rotation costs in Secrets Manager
// API calls, per step and per operation, in each scheme: RotateSecret and
// the four steps through the handler, against internal/smtest, which counts
// the requests it receives. README.md's table is this test's figures; a
// change to them fails here first.
func TestCallsPerRotation(t *testing.T) {
	type calls = map[string]int
	want := map[string][]calls{
		"single": {
			{"RotateSecret": 1},
			{"DescribeSecret": 2, "GetSecretValue": 3, "GetRandomPassword": 1, "PutSecretValue": 1},
			{"DescribeSecret": 2, "GetSecretValue": 2},
			{"DescribeSecret": 1, "GetSecretValue": 1},
			{"DescribeSecret": 2, "GetSecretValue": 1, "UpdateSecretVersionStage": 2},
		},
		"alternating": {
			{"RotateSecret": 1},
			{"DescribeSecret": 2, "GetSecretValue": 3, "GetRandomPassword": 1, "PutSecretValue": 1},
			{"DescribeSecret": 2, "GetSecretValue": 3},
			{"DescribeSecret": 1, "GetSecretValue": 1},
			{"DescribeSecret": 2, "GetSecretValue": 1, "UpdateSecretVersionStage": 2},
		},
	}
	for _, scheme := range []string{"single", "alternating"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEnv(t, scheme)
			role := uniq("calls_" + scheme[:3])
			arn := e.setup(t, ctx, scheme, role, "calls-old-pw")
			names := []string{"RotateSecret", stepCreate, stepSet, stepTest, stepFinish}
			var got []calls
			total := 0
			e.srv.ResetCalls()
			token := e.rotate(t, arn)
			got = append(got, e.srv.Calls())
			for _, step := range names[1:] {
				e.srv.ResetCalls()
				if err := e.step(ctx, arn, token, step); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				got = append(got, e.srv.Calls())
			}
			for i, c := range got {
				n := 0
				for _, k := range c {
					n += k
				}
				total += n
				t.Logf("%s: %d %v", names[i], n, c)
				if !maps.Equal(c, want[scheme][i]) {
					t.Errorf("%s: calls %v, want %v", names[i], c, want[scheme][i])
				}
			}
			t.Logf("%s: %d calls per rotation", scheme, total)
			e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "calls-old-pw")
		})
	}
}
