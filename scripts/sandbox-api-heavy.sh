#!/usr/bin/env bash
# sandbox-api-heavy.sh - sandbox-api's heavy runs, too long for CI: the
# bounded load test (5 keys x 20 runtimes x 100 actions through the proxy),
# the kill -9 test repeated with other kill moments, and the benchmarks
# with their same-run floors. Needs root-less nothing: a Docker engine and
# the test image (scripts/mkimage-debian.sh). ~5 minutes on 2 cores.
#
# Usage: scripts/sandbox-api-heavy.sh [BENCHTIME]   (default 20x)
set -euo pipefail
cd "$(dirname "$0")/.."
BT=${1:-20x}
export SBX_REQUIRE_DOCKER=1
echo "== load: 5 keys x 20 runtimes x 100 actions"
SBX_HEAVY=1 go test -count=1 -run 'TestLoad$' -v ./bench/runtimeapibench | grep -E 'load_test.go|^(--- |ok|FAIL)'
echo "== kill -9 during 50 creates, three times"
go test -count=3 -run 'TestKill9DuringCreates$' -v ./cmd/sandbox-api | grep -E 'main_test.go:[0-9]+: (killed|after)|^(--- FAIL|ok|FAIL)'
echo "== benchmarks (floors in the same run)"
go test -run XXX -bench 'StartReady|ProxyOverhead' -benchtime "$BT" ./bench/runtimeapibench | grep -E '^(Benchmark|ok|FAIL)'
go test -run XXX -bench SessionsPoll30 -benchtime 15000x ./bench/runtimeapibench | grep -E '^(Benchmark|ok|FAIL)'
go test -run XXX -bench 'ServiceRSS' -benchtime 1x ./bench/runtimeapibench | grep -E '^(Benchmark|ok|FAIL)'
