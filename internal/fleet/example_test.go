package fleet_test

import (
	"fmt"
	"time"

	"github.com/rotorhq/rotor/internal/fleet"
	"github.com/rotorhq/rotor/internal/smtest"
)

// Count a server's requests over a span: the mean, and the peak over
// 1-second windows, set against what a fleet of 100 Stores polling 5 keys
// every 30 seconds needs at least.
func ExampleMeasure() {
	start := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	var log []smtest.Request
	for i := range 12 { // ten in the first second, two in the second
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		log = append(log, smtest.Request{Op: "BatchGetSecretValue", Time: at})
	}
	tr := fleet.Measure(log, start, start.Add(4*time.Second))

	cfg := fleet.Config{Instances: 100, Keys: 5, TTL: 30 * time.Second}
	fmt.Printf("ideal %.2f/s, mean %.2f/s, peak %d/s over %d windows\n", cfg.Ideal(), tr.Mean, tr.Peak, tr.Windows)
	fmt.Println("random phases alone would peak at", fleet.RandomPhasePeak(cfg.Ideal(), tr.Windows))
	// Output:
	// ideal 3.33/s, mean 3.00/s, peak 10/s over 4 windows
	// random phases alone would peak at 5
}
