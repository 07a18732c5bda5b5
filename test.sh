#!/usr/bin/env bash
# The project's test command: every test of every module, with the race
# detector. .ci/run runs it after installing what the tests need.
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 ./...
