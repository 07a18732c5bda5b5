package fakeclock_test

import (
	"fmt"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
)

func Example() {
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	timer := clock.NewTimer(time.Minute)
	clock.Advance(30 * time.Second)
	select {
	case <-timer.C():
		fmt.Println("fired early")
	default:
		fmt.Println("not yet at", clock.Now().Format("15:04:05"))
	}
	clock.Advance(30 * time.Second)
	fmt.Println("fired at", (<-timer.C()).Format("15:04:05"))
	// Output:
	// not yet at 00:00:30
	// fired at 00:01:00
}
