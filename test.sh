#!/usr/bin/env bash
# The project's test command: every test of both modules, with the race
# detector.
#
#   1. the library module (all packages but the drill);
#   2. internal/vaultit, a module of its own that runs the Vault tests against
#      a real Vault server (its first build compiles Vault: minutes), and
#      examples/thirdpartysource, a module of its own whose source runs the
#      public conformance suite as a third party's would;
#   3. the rotation drill (examples/drill: the built example server, an MCP
#      client and a rotator, each a process of its own; eight rows of five
#      rotations of a real PostgreSQL password with no overlap, both orders,
#      with and without SIGHUP, one role or two, and three rows in which
#      the rotation agent (examples/rotator) rotates, one of them rolling
#      back a failed verify; against rotor and a read-once baseline). It
#      asserts what happened, not how fast, and prints the table and the
#      latency inside and outside rotation windows.
#
# The timeouts only turn a hang into a failure: on a machine whose cores are
# busy with other work every stage stretches, and nothing here measures
# speed.
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 -timeout 30m -skip '^TestDrill$' ./...
(cd internal/vaultit && go test -race -count=1 -timeout 30m ./...)
(cd examples/thirdpartysource && go test -race -count=1 ./...)
go test -race -count=1 -timeout 30m -run '^TestDrill$' -v ./examples/drill/ 2>&1 | grep -v '^=== '
