#!/usr/bin/env bash
# The project's test command: every test of both modules, with the race
# detector.
#
#   1. the library module (all packages but the drill);
#   2. internal/vaultit, a module of its own that runs the Vault tests against
#      a real Vault server (its first build compiles Vault: minutes);
#   3. the rotation drill (examples/drill: 2 x 2 passes of 30 s of load on a
#      real PostgreSQL), last and alone, so that other tests do not take the
#      CPU it measures with; it prints its table.
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 -skip '^TestDrill$' ./...
(cd internal/vaultit && go test -race -count=1 ./...)
go test -race -count=1 -run '^TestDrill$' -v ./examples/drill/ 2>&1 | grep -v '^=== '
