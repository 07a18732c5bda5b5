package deploy_test

import (
	"testing"
	"time"
)

// checkRotatorTTL checks that the rotator's -ttl, from which the overlap is
// computed (3 × -ttl at least), covers how late a server may pick up a new
// value: its own refresh interval (-ttl) and, where an engine delivers the
// files, that engine's delay (delivery; zero where the file source sees the
// change at once).
func checkRotatorTTL(t *testing.T, rotatorArgs, serverArgs []string, delivery time.Duration) {
	t.Helper()
	duration := func(args []string, who string) time.Duration {
		v, ok := flagValue(args, "ttl")
		if !ok {
			t.Fatalf("the %s has no -ttl", who)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("the %s's -ttl %s: %v", who, v, err)
		}
		return d
	}
	rot, srv := duration(rotatorArgs, "rotator"), duration(serverArgs, "server")
	if rot < srv || rot < delivery {
		t.Errorf("the rotator's -ttl %v is shorter than how late a server may pick up a new value (its -ttl %v, delivery %v): the overlap would not cover it", rot, srv, delivery)
	}
}
