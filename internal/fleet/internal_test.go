package fleet

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/smtest"
)

func TestInstanceOf(t *testing.T) {
	for ua, want := range map[string]int{
		"aws-sdk-go-v2/1.47.7 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux app/fleet-42": 42,
		"aws-sdk-go-v2/1.47.7 app/fleet-7 m/E":                                         7,
		"aws-sdk-go-v2/1.47.7 app/other-7":                                             -1,
		"":                                                                             -1,
		"app/fleet-":                                                                   -1,
	} {
		if got := instanceOf(smtest.Request{UserAgent: ua}); got != want {
			t.Errorf("instanceOf(%q) = %d, want %d", ua, got, want)
		}
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	c := newConvergence(time.Time{}, ds)
	if c.P50 != 100*time.Millisecond || c.P99 != 198*time.Millisecond || c.Max != 200*time.Millisecond {
		t.Errorf("p50 %v, p99 %v, max %v; want 100ms, 198ms, 200ms", c.P50, c.P99, c.Max)
	}
	if one := newConvergence(time.Time{}, []time.Duration{time.Second}); one.P50 != time.Second || one.P99 != time.Second {
		t.Errorf("one Store: %+v", one)
	}
	if none := newConvergence(time.Time{}, nil); none.Max != 0 {
		t.Errorf("no Store: %+v", none)
	}
}

// TestSignalLog checks which records of a Store's logger count as the
// outcome of a signalled reload.
func TestSignalLog(t *testing.T) {
	f := &fleet{changed: make(chan struct{})}
	in := &instance{}
	log := slog.New(&signalLog{f: f, in: in})
	ctx := context.Background()
	log.LogAttrs(ctx, slog.LevelInfo, "secrets: reloaded", slog.Int("keys", 5)) // a reload's own record
	log.LogAttrs(ctx, slog.LevelDebug, "spread", slog.String("signal", "hangup"), slog.Duration("wait", time.Second))
	log.LogAttrs(ctx, slog.LevelWarn, "retrying", slog.String("signal", "hangup"), slog.Duration("retry_in", time.Second))
	log.LogAttrs(ctx, slog.LevelWarn, "failed", slog.String("signal", "hangup"), slog.Int("attempts", 5))
	log.With("store", 1).LogAttrs(ctx, slog.LevelInfo, "reloaded", slog.String("signal", "hangup"))
	if len(in.signals) != 2 || in.signals[0].ok || !in.signals[1].ok {
		t.Errorf("outcomes %+v; want a failure, then a success", in.signals)
	}
}
