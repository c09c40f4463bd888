#!/usr/bin/env bash
# bench-compare.sh [BASE] [BENCH_REGEXP] - the driver figures of commit BASE
# (default HEAD~1) and of this work tree, measured in one run, rounds
# interleaved (base, new, base, new, …) so that a busy machine weighs on
# both alike. Each line is prefixed "base" or "new"; every round also
# measures the engine's floors, which both trees share.
#
# Environment: ROUNDS (default 3), BENCHTIME (default 20x), SBX_BENCH_IMAGE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base=${1:-HEAD~1}
re=${2:-'CreateToFirstEcho$|CreateToFirstEchoNoAppPorts|FloorDockerRun$|SbxRunRm|FloorDockerCLIRunRm'}
rounds=${ROUNDS:-3}
benchtime=${BENCHTIME:-20x}
tmp=$(mktemp -d /tmp/sbx-bench-compare.XXXXXX)
cleanup() { git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add -q --detach "$tmp/base" "$base"
echo "base = $(git rev-parse --short "$base"), new = work tree at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)')"
for ((r = 1; r <= rounds; r++)); do
	for side in base new; do
		dir=$PWD
		[ "$side" = base ] && dir=$tmp/base
		(cd "$dir" && go test ./bench/dockerbench -run XXX -bench "$re" -benchtime "$benchtime" -count 1) 2>&1 |
			grep -E '^Benchmark|FAIL|panic' | sed "s/^/$side round $r: /"
	done
done
