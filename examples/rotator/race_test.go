package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestRotatorProcessesStartedAtOnceRotateOnce: several rotator processes started at
// once on one file: exactly one rotates (exit 0), the others are kept out
// (exit 4), and the file and the database agree.
func TestRotatorProcessesStartedAtOnceRotateOnce(t *testing.T) {
	srv := startDB(t)
	for round := range 1 {
		dir, first := setup(t, srv, fmt.Sprintf("race%d_app", round))
		var wg sync.WaitGroup
		codes := make([]int, 4)
		outs := make([]string, 4)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], outs[i] = runRotator(t, nil, baseArgs(srv, dir)...)
			}()
		}
		wg.Wait()
		sorted := append([]int(nil), codes...)
		sort.Ints(sorted)
		if fmt.Sprint(sorted) != fmt.Sprint([]int{exitOK, exitInProgress, exitInProgress, exitInProgress}) {
			t.Fatalf("round %d: exit codes %v, want one 0 and three 4:\n%s", round, codes, strings.Join(outs, "\n----\n"))
		}
		cur := agree(t, srv, dir, first)
		if cur.Password == first.Password {
			t.Fatal("no rotation")
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".db.json.rotor-[lpt]*")); len(left) != 1 || !strings.Contains(left[0], "previous-") {
			t.Errorf("round %d: files left beside db.json: %v (want only the previous copy and the record)", round, left)
		}
		_ = os.Remove
	}
}
