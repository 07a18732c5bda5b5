#!/usr/bin/env bash
# The project's test command: every test, with the race detector.
#
# The rotation drill (examples/drill, 2 x 2 passes of 30 s of load on a real
# PostgreSQL) runs last and alone, so that other packages' tests do not take
# the CPU it measures with; it prints its table.
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 -skip '^TestDrill$' ./...
go test -race -count=1 -run '^TestDrill$' -v ./examples/drill/ 2>&1 | grep -v '^=== '
