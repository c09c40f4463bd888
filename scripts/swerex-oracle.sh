#!/usr/bin/env bash
# swerex-oracle.sh - compare our swerex-remote with upstream SWE-ReX's Python
# server, by machine, inside the sbx-test/swerex-oracle:trixie image
# (which sbx does not ship a recipe for: see docs/swerex-oracle.md).
#
# Usage: scripts/swerex-oracle.sh [MODES] [OPTIONS] [PATH_TO_swerex-remote] [-- PYTEST_ARGS...]
# Modes (default: --tests only):
#   --tests     run upstream's tests/test_server.py tests/test_execution.py
#               (a) against upstream's own server, (b) against PATH if given
#               (testdata/swerex-oracle/foreign_server.py replaces the
#               remote_server fixture); per-test table + summary line
#   --compare   testdata/swerex-oracle/compare.py: the same ~220 raw HTTP
#               requests to upstream's server and to PATH (without PATH: to a
#               second upstream instance, which must give 0 differences)
#   --bench     testdata/swerex-oracle/bench.py: startup time, run_in_session
#               latency p50/p99, RSS; upstream vs PATH side by side
#   --all       all three
# Options:
#   -k EXPR           pytest -k (also --k=EXPR); PYTEST_ARGS after -- go to pytest as is
#   --only SUBSTR     compare: only the requests whose name contains SUBSTR
#   --runs N          bench: requests per latency figure (default 300)
#   --network MODE    none (default: the container has only its own loopback)
#                     or host; servers always bind 127.0.0.1
#   --keep-logs DIR   where logs go (default: a new /tmp/swerex-oracle.XXXXXX)
# PATH is our swerex-remote (e.g. DIR/swerex-remote -> sandboxd); its directory
# is mounted read-only. Everything runs in one container labelled
# dev.sbx.test=swerex-oracle, removed on exit (also on INT/TERM).
# Exit status: 0 all good; 1 if a test fails on ours that passes on upstream,
# the compare finds differences, or the bench fails; 2 on a setup error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${SWEREX_ORACLE_IMAGE:-sbx-test/swerex-oracle:trixie}
LABEL=dev.sbx.test=swerex-oracle
DO_TESTS=0 DO_COMPARE=0 DO_BENCH=0
NETWORK=none
RUNS=300
ONLY=""
OURS=""
OUT=""
PYTEST_ARGS=()

START=$SECONDS
log() { printf '[swerex-oracle %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
	case $1 in
	--tests) DO_TESTS=1 ;;
	--compare) DO_COMPARE=1 ;;
	--bench) DO_BENCH=1 ;;
	--all) DO_TESTS=1 DO_COMPARE=1 DO_BENCH=1 ;;
	-k) [ $# -ge 2 ] || die "-k needs a value"; PYTEST_ARGS+=(-k "$2"); shift ;;
	--k=*) PYTEST_ARGS+=(-k "${1#*=}") ;;
	--only) [ $# -ge 2 ] || die "--only needs a value"; ONLY=$2; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift ;;
	--runs=*) RUNS=${1#*=} ;;
	--network) [ $# -ge 2 ] || die "--network needs a value"; NETWORK=$2; shift ;;
	--network=*) NETWORK=${1#*=} ;;
	--keep-logs) [ $# -ge 2 ] || die "--keep-logs needs a value"; OUT=$2; shift ;;
	--keep-logs=*) OUT=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	--) shift; PYTEST_ARGS+=("$@"); break ;;
	-*) usage >&2; die "unknown option: $1" ;;
	*) [ -z "$OURS" ] || die "only one PATH"; OURS=$1 ;;
	esac
	shift
done
[ "$DO_TESTS$DO_COMPARE$DO_BENCH" = 000 ] && DO_TESTS=1
case $NETWORK in none | host) ;; *) die "--network must be none or host" ;; esac

# sbx commits no script that builds upstream's code into an image; the
# image is made on the machine (docs/swerex-oracle.md says what it holds).
# SWEREX_ORACLE_BUILD names a local builder to run first, if there is one.
if [ -n "${SWEREX_ORACLE_BUILD:-}" ]; then
	"$SWEREX_ORACLE_BUILD" || die "$SWEREX_ORACLE_BUILD failed"
fi
docker image inspect "$IMAGE" >/dev/null 2>&1 ||
	die "image $IMAGE is missing: it must hold SWE-ReX 1.4.0's source and tests at /opt/swe-rex with their Python dependencies (see docs/swerex-oracle.md)"

if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/swerex-oracle.XXXXXX); else mkdir -p "$OUT"; fi

MOUNTS=(-v "$HERE/testdata/swerex-oracle:/oracle:ro")
OURS_IN=""
LINK_CMD=""
if [ -n "$OURS" ]; then
	[ -x "$OURS" ] || die "$OURS is not an executable file"
	abs=$(cd "$(dirname "$OURS")" && pwd)/$(basename "$OURS")
	real=$(readlink -f "$abs")
	if [ "$(dirname "$real")" = "$(dirname "$abs")" ] || [ ! -L "$abs" ]; then
		# the binary's directory, read-only (a DIR/swerex-remote -> sandboxd link keeps working)
		MOUNTS+=(-v "$(dirname "$abs"):/ours:ro")
		OURS_IN=/ours/$(basename "$abs")
	else
		# a link to another directory: mount the target's directory, and give
		# the binary its name (argv[0]) through a link inside the container
		MOUNTS+=(-v "$(dirname "$real"):/ours:ro")
		OURS_IN=/usr/local/libexec/sbx-ours/$(basename "$abs")
		LINK_CMD="mkdir -p /usr/local/libexec/sbx-ours && ln -sf /ours/$(basename "$real") $OURS_IN"
	fi
fi

CID=""
cleanup() {
	local rc=$?
	if [ -n "$CID" ]; then
		[ -z "$CHILD" ] || kill "$CHILD" 2>/dev/null || true
		docker cp "$CID:/tmp/oracle-logs/." "$OUT/" >/dev/null 2>&1 || true
		docker rm -f "$CID" >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CID=$(docker run -d --rm --init --label "$LABEL" --name "sbx-swerex-oracle-$$" --network "$NETWORK" \
	"${MOUNTS[@]}" "$IMAGE" sleep infinity) || die "docker run failed"
# dx [-e VAR=VALUE]... CMD...: run CMD in the container. In the background,
# waited for with `wait`, so that INT/TERM run the traps (and remove the
# container) at once; bash would defer them until a foreground child exits.
CHILD=""
dx() {
	local -a e=(-e PYTHONPATH=/oracle)
	while [ "${1:-}" = -e ]; do e+=(-e "$2"); shift 2; done
	local rc=0
	docker exec -w /opt/swe-rex "${e[@]}" "$CID" "$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}
dx mkdir -p /tmp/oracle-logs
[ -z "$LINK_CMD" ] || dx sh -c "$LINK_CMD"
if [ -n "$OURS_IN" ]; then
	dx sh -c "'$OURS_IN' --version" >"$OUT/ours-version.txt" 2>&1 ||
		log "WARNING: $OURS --version failed in the container: $(head -c 300 "$OUT/ours-version.txt")"
fi
log "container ${CID:0:12} ($IMAGE, network $NETWORK); logs in $OUT"

SUMMARY=()
RC=0

if [ "$DO_TESTS" = 1 ]; then
	TESTS=(tests/test_server.py tests/test_execution.py)
	run_pytest() { # NAME [SWEREX_REMOTE_BIN]
		local name=$1 bin=${2:-} t0=$SECONDS prc=0
		local -a envs=()
		[ -z "$bin" ] || envs=(-e "SWEREX_REMOTE_BIN=$bin" -e "SWEREX_REMOTE_LOG=/tmp/oracle-logs/server-$name.log")
		log "pytest against $name's server${bin:+ ($bin)}"
		dx "${envs[@]}" timeout 1200 python3 -m pytest -p foreign_server -p no:cacheprovider -q -rfE \
			--junitxml="/tmp/oracle-logs/junit-$name.xml" "${TESTS[@]}" "${PYTEST_ARGS[@]}" \
			>"$OUT/pytest-$name.log" 2>&1 || prc=$?
		log "pytest against $name: exit $prc in $((SECONDS - t0))s ($(tail -n1 "$OUT/pytest-$name.log"))"
	}
	run_pytest upstream
	[ -z "$OURS_IN" ] || run_pytest ours "$OURS_IN"
	files=(/tmp/oracle-logs/junit-upstream.xml)
	[ -z "$OURS_IN" ] || files+=(/tmp/oracle-logs/junit-ours.xml)
	trc=0
	dx python3 /oracle/results.py "${files[@]}" >"$OUT/tests.txt" 2>&1 || trc=$?
	cat "$OUT/tests.txt"
	[ "$trc" = 0 ] || RC=1
	SUMMARY+=("$(grep '^swerex-oracle tests' "$OUT/tests.txt" | tail -n1 || echo "tests: results.py failed (exit $trc)")")
fi

if [ "$DO_COMPARE" = 1 ]; then
	if [ -n "$OURS_IN" ]; then cmp=(--b "$OURS_IN"); else cmp=(--b swerex-remote --b-name upstream2); fi
	[ -z "$ONLY" ] || cmp+=(--only "$ONLY")
	log "compare: upstream vs ${OURS_IN:-a second upstream instance}"
	crc=0
	dx python3 /oracle/compare.py --a swerex-remote "${cmp[@]}" --log-dir /tmp/oracle-logs/compare \
		>"$OUT/compare.txt" 2>&1 || crc=$?
	cat "$OUT/compare.txt"
	[ "$crc" = 0 ] || RC=1
	SUMMARY+=("$(grep '^compare:' "$OUT/compare.txt" | tail -n1 || echo "compare: failed (exit $crc)")")
fi

if [ "$DO_BENCH" = 1 ]; then
	b=(upstream=swerex-remote)
	[ -z "$OURS_IN" ] || b+=("ours=$OURS_IN")
	log "bench: ${b[*]} ($RUNS runs)"
	brc=0
	dx python3 /oracle/bench.py "${b[@]}" --runs "$RUNS" >"$OUT/bench.txt" 2>&1 || brc=$?
	cat "$OUT/bench.txt"
	[ "$brc" = 0 ] || { RC=1; SUMMARY+=("bench: failed (exit $brc)"); }
fi

log "done in $((SECONDS - START))s; logs in $OUT"
for line in "${SUMMARY[@]}"; do echo "$line"; done
exit "$RC"
