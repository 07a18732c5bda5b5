package smtest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/internal/smtest"
)

var trafficEpoch = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// get reads id and returns the error code of the failure, "" on success.
func get(t *testing.T, c *secretsmanager.Client, id string) string {
	t.Helper()
	_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err == nil {
		return ""
	}
	return apiCode(t, err)
}

func describe(t *testing.T, c *secretsmanager.Client, id string) string {
	t.Helper()
	_, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err == nil {
		return ""
	}
	return apiCode(t, err)
}

// TestQuotaThrottles spends a quota of 2 a second at one instant, then
// refills half of it on the server's clock.
func TestQuotaThrottles(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now),
		smtest.WithQuota(smtest.Quota{Ops: []string{"GetSecretValue"}, PerSecond: 2}))
	srv.Put("db", "v")
	c := srv.Client()

	var got []string
	for range 3 {
		got = append(got, get(t, c, "db"))
	}
	if want := []string{"", "", "ThrottlingException"}; !slices.Equal(got, want) {
		t.Fatalf("three reads at one instant: %q, want %q", got, want)
	}
	if code := describe(t, c, "db"); code != "" {
		t.Errorf("DescribeSecret, which no quota limits: %s", code)
	}

	clk.Advance(500 * time.Millisecond) // one token back
	got = got[:0]
	for range 2 {
		got = append(got, get(t, c, "db"))
	}
	if want := []string{"", "ThrottlingException"}; !slices.Equal(got, want) {
		t.Errorf("after half a second: %q, want %q", got, want)
	}

	clk.Advance(time.Hour) // the bucket holds one second's worth, no more
	got = got[:0]
	for range 3 {
		got = append(got, get(t, c, "db"))
	}
	if want := []string{"", "", "ThrottlingException"}; !slices.Equal(got, want) {
		t.Errorf("after an hour: %q, want %q", got, want)
	}
	if n := srv.Throttled(); n != 3 {
		t.Errorf("Throttled() = %d, want 3", n)
	}
	if n := srv.CallCount("GetSecretValue"); n != 8 {
		t.Errorf("CallCount = %d, want 8: throttled requests count too", n)
	}
}

// TestQuotaHTTPStatus checks the answer beyond a quota: HTTP 400
// ThrottlingException, as a Throttle fault answers.
func TestQuotaHTTPStatus(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now),
		smtest.WithQuota(smtest.Quota{Ops: []string{"DescribeSecret"}, PerSecond: 1}))
	srv.Put("db", "v")
	c := srv.Client()
	describe(t, c, "db")
	_, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if code := apiCode(t, err); code != "ThrottlingException" {
		t.Fatalf("code %s", code)
	}
	if s := httpStatus(t, err); s != 400 {
		t.Errorf("status %d, want 400", s)
	}
}

// TestQuotaShared checks that a quota limits its operations together, and
// that an operation under two quotas takes no token from either when one is
// empty.
func TestQuotaShared(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now), smtest.WithQuota(
		smtest.Quota{Ops: []string{"GetSecretValue", "DescribeSecret"}, PerSecond: 3},
		smtest.Quota{Ops: []string{"GetSecretValue"}, PerSecond: 1},
	))
	srv.Put("db", "v")
	c := srv.Client()

	got := []string{
		get(t, c, "db"),      // both quotas: 2 and 0 left
		get(t, c, "db"),      // the second is empty: throttled, nothing taken
		describe(t, c, "db"), // shared: 1 left
		describe(t, c, "db"), // shared: 0 left
		describe(t, c, "db"), // throttled
	}
	want := []string{"", "ThrottlingException", "", "", "ThrottlingException"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestQuotaBeforeFaults checks that a request throttled by a quota meets no
// fault: a fault limited to one firing is still there for the next request.
func TestQuotaBeforeFaults(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now),
		smtest.WithQuota(smtest.Quota{Ops: []string{"GetSecretValue"}, PerSecond: 1}))
	srv.Put("db", "v")
	c := srv.Client()
	get(t, c, "db")
	srv.AddFault(smtest.Fault{Op: "GetSecretValue", Kind: smtest.AccessDenied, Count: 1})
	if code := get(t, c, "db"); code != "ThrottlingException" {
		t.Fatalf("second read: %q, want the quota's throttle", code)
	}
	clk.Advance(time.Second)
	if code := get(t, c, "db"); code != "AccessDeniedException" {
		t.Errorf("third read: %q, want the fault", code)
	}
}

// TestRequestLog checks what the log records: operation, secret ids, the
// client's AppID in the User-Agent, the server's time, the quota's verdict.
func TestRequestLog(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now), smtest.WithRequestLog(),
		smtest.WithQuota(smtest.Quota{Ops: []string{"BatchGetSecretValue"}, PerSecond: 1}))
	srv.Put("a", "1")
	srv.Put("b", "2")
	cfg := srv.Config()
	cfg.AppID = "fleet-7"
	c := secretsmanager.NewFromConfig(cfg)
	ctx := context.Background()

	get(t, c, "a")
	clk.Advance(time.Second)
	for range 2 {
		_, _ = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a", "b"}})
	}

	log := srv.Requests()
	if len(log) != 3 {
		t.Fatalf("%d requests logged, want 3: %+v", len(log), log)
	}
	want := []struct {
		op        string
		ids       []string
		at        time.Time
		throttled bool
	}{
		{"GetSecretValue", []string{"a"}, trafficEpoch, false},
		{"BatchGetSecretValue", []string{"a", "b"}, trafficEpoch.Add(time.Second), false},
		{"BatchGetSecretValue", []string{"a", "b"}, trafficEpoch.Add(time.Second), true},
	}
	for i, w := range want {
		r := log[i]
		if r.Op != w.op || !slices.Equal(r.SecretIDs, w.ids) || !r.Time.Equal(w.at) || r.Throttled != w.throttled {
			t.Errorf("request %d: %+v, want %+v", i, r, w)
		}
		if !strings.Contains(r.UserAgent, "app/fleet-7") {
			t.Errorf("request %d: User-Agent %q lacks the AppID", i, r.UserAgent)
		}
	}

	log[0].SecretIDs[0] = "changed"
	if again := srv.Requests(); again[0].SecretIDs[0] != "a" {
		t.Error("Requests returned the server's own slice")
	}
	srv.ResetRequests()
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests after ResetRequests", n)
	}
	get(t, c, "b")
	if log := srv.Requests(); len(log) != 1 || log[0].Op != "GetSecretValue" {
		t.Errorf("after ResetRequests: %+v", log)
	}
}

func TestNoRequestLogByDefault(t *testing.T) {
	srv := smtest.NewServer(t)
	srv.Put("a", "1")
	get(t, srv.Client(), "a")
	if log := srv.Requests(); log != nil {
		t.Errorf("Requests() = %+v without WithRequestLog", log)
	}
	if n := srv.Throttled(); n != 0 {
		t.Errorf("Throttled() = %d without quotas", n)
	}
}

// TestAWSQuotas checks the documented defaults where a test can reach
// them: a burst of 100 BatchGetSecretValue calls passes, the 101st does not.
func TestAWSQuotas(t *testing.T) {
	clk := fakeclock.New(trafficEpoch)
	srv := smtest.NewServer(t, smtest.WithClock(clk.Now), smtest.WithQuota(smtest.AWSQuotas()...))
	srv.Put("a", "1")
	c := srv.Client()
	ctx := context.Background()
	for i := range 101 {
		_, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"}})
		switch {
		case i < 100 && err != nil:
			t.Fatalf("call %d: %v", i+1, err)
		case i == 100:
			if code := apiCode(t, err); code != "ThrottlingException" {
				t.Fatalf("call 101: %s", code)
			}
		}
	}
	for _, q := range smtest.AWSQuotas() {
		if q.PerSecond < 50 {
			t.Errorf("%v: %d a second, below every documented rate", q.Ops, q.PerSecond)
		}
	}
}

func TestWithQuotaPanicsOnMistakes(t *testing.T) {
	for name, q := range map[string]smtest.Quota{
		"no ops":     {PerSecond: 1},
		"unknown op": {Ops: []string{"secretsmanager.GetSecretValue"}, PerSecond: 1},
		"zero rate":  {Ops: []string{"GetSecretValue"}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			smtest.WithQuota(q)
		})
	}
}
