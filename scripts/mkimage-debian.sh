#!/usr/bin/env bash
# mkimage-debian.sh - build the local Debian 12 (bookworm) base images used by
# sbx's container tests, without any image registry.
#
#   sbx-test/debian:bookworm            debootstrap --variant=minbase rootfs plus
#                                       what an agent sandbox needs, imported
#                                       with `docker import`
#   sbx-test/debian-nouseradd:bookworm  the same, with useradd & co. removed, so
#                                       sandboxd's fallback user creation (writing
#                                       /etc/passwd itself) can be exercised
#
# Idempotent: an image that exists and was built from the current recipe is
# reused; --force rebuilds both. When an image made by `sbx image bootstrap`
# for the same suite with (at least) these packages exists, its root file
# system is copied into $TAG (docker export | docker import, seconds) instead
# of running debootstrap again (minutes); --force debootstraps in any case.
# Needs root (debootstrap) only when debootstrapping.
#
# Usage: scripts/mkimage-debian.sh [--force] [--tag TAG] [--nouseradd-tag TAG]
#                                  [--mirror URL]
# Environment: SBX_DEBIAN_MIRROR (same as --mirror; default: the Debian mirror
# this host's apt uses, else deb.debian.org), SBX_MKIMAGE_TMP (where the rootfs
# is assembled; default /var/tmp), SBX_MKIMAGE_LOCK (lock file serialising
# concurrent runs; default /tmp/sbx-mkimage-debian.lock).
set -euo pipefail

SUITE=bookworm
# Packages on top of minbase. bash, procps etc. are what an agent expects to
# find in a sandbox; keep this list lean.
PACKAGES=(bash python3 git procps ca-certificates curl less)
# Bump when the way the rootfs is assembled changes, so that existing images
# built by an older recipe are rebuilt.
RECIPE_VERSION=2

TAG=sbx-test/debian:bookworm
NOUSERADD_TAG=sbx-test/debian-nouseradd:bookworm
FORCE=0
MIRROR=${SBX_DEBIAN_MIRROR:-}
WORKROOT=${SBX_MKIMAGE_TMP:-/var/tmp}

START=$SECONDS
log() { printf '[mkimage %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

while [ $# -gt 0 ]; do
	case $1 in
	--force) FORCE=1 ;;
	--tag) [ $# -ge 2 ] || die "--tag needs a value"; TAG=$2; shift ;;
	--tag=*) TAG=${1#*=} ;;
	--nouseradd-tag) [ $# -ge 2 ] || die "--nouseradd-tag needs a value"; NOUSERADD_TAG=$2; shift ;;
	--nouseradd-tag=*) NOUSERADD_TAG=${1#*=} ;;
	--mirror) [ $# -ge 2 ] || die "--mirror needs a value"; MIRROR=$2; shift ;;
	--mirror=*) MIRROR=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done

command -v docker >/dev/null 2>&1 || die "docker CLI not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
	die "the Docker daemon does not answer ('docker version' failed)"

# The recipe hash goes into a label on the image; an image with another hash
# (or none) is stale.
RECIPE=$(printf '%s\n' "v$RECIPE_VERSION" "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-16)

# image_label TAG KEY: print the label's value, or nothing if the image or the
# label is missing.
image_label() {
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_id() {
	docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

image_size_mb() {
	local bytes
	bytes=$(docker image inspect --format '{{.Size}}' "$1")
	echo "$((bytes / 1000 / 1000)) MB"
}

# detect_mirror prints the URI apt on this host uses for Debian's main
# archive (the first source carrying suite $SUITE, so not the security
# archive), read from one-line .list files and deb822 .sources files in the
# order apt reads them. Prints nothing if none is found. Plain POSIX awk.
detect_mirror() {
	local f uri
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		case $f in
		*.sources)
			uri=$(awk -v suite="$SUITE" '
				function flush(   n, i, s) {
					if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled && uris != "") {
						n = split(suites, s, /[ \t]+/)
						for (i = 1; i <= n; i++) if (s[i] == suite) { print uris; exit }
					}
					uris = ""; suites = ""; types = ""; enabled = 1
				}
				BEGIN { enabled = 1 }
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				tolower($1) == "types:"   { $1 = ""; types = $0; next }
				tolower($1) == "uris:"    { uris = $2; next }
				tolower($1) == "suites:"  { $1 = ""; suites = $0; next }
				tolower($1) == "enabled:" { enabled = (tolower($2) != "no"); next }
				END { flush() }
			' "$f" 2>/dev/null | head -n1)
			;;
		*)
			uri=$(awk -v suite="$SUITE" '
				$1 != "deb" { next }
				{
					i = 2
					if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
					if ($(i + 1) == suite) { print $i; exit }
				}
			' "$f" 2>/dev/null | head -n1)
			;;
		esac
		uri=${uri%/}
		case $uri in
		http://* | https://*) echo "$uri"; return 0 ;;
		esac
	done
}

ROOTFS_PARENT=""
DEBOOTSTRAP_PID=""
cleanup() {
	local rc=$? m
	if [ -n "$DEBOOTSTRAP_PID" ] && kill -0 "$DEBOOTSTRAP_PID" 2>/dev/null; then
		log "stopping debootstrap (session $DEBOOTSTRAP_PID)"
		kill -TERM -- "-$DEBOOTSTRAP_PID" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$DEBOOTSTRAP_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$DEBOOTSTRAP_PID" 2>/dev/null || true
		wait "$DEBOOTSTRAP_PID" 2>/dev/null || true
	fi
	if [ -n "$ROOTFS_PARENT" ] && [ -d "$ROOTFS_PARENT" ]; then
		# debootstrap mounts proc/sys (and sometimes binds /dev) inside the
		# target; a failed run can leave them mounted. Unmount deepest first,
		# then remove without crossing into any other file system.
		while read -r m; do
			umount -l "$m" 2>/dev/null || true
		done < <(awk -v p="$ROOTFS_PARENT/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
		rm -rf --one-file-system "$ROOTFS_PARENT" || log "WARNING: could not remove $ROOTFS_PARENT"
	fi
	if [ "$rc" -ne 0 ]; then
		log "FAILED (exit $rc)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Serialise concurrent runs on one machine (two test runs, or a developer and
# a test run) so they don't debootstrap twice or race on the tags.
LOCKFILE=${SBX_MKIMAGE_LOCK:-/tmp/sbx-mkimage-debian.lock}
exec 9>>"$LOCKFILE"
if ! flock -n 9; then
	log "another mkimage-debian.sh is running; waiting for it (up to 30 min)"
	flock -w 1800 9 || die "timed out waiting for $LOCKFILE"
fi

build_base() {
	[ "$(id -u)" -eq 0 ] || die "building $TAG needs root (debootstrap); run as root or via sudo"

	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends debootstrap debian-archive-keyring >/dev/null
	fi

	if [ -z "$MIRROR" ]; then
		MIRROR=$(detect_mirror)
		if [ -n "$MIRROR" ]; then
			log "using the Debian mirror apt uses on this host: $MIRROR"
		else
			MIRROR=http://deb.debian.org/debian
			log "no $SUITE source found in /etc/apt; using the default mirror $MIRROR"
		fi
	else
		log "using mirror $MIRROR"
	fi

	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	local -a keyopt=()
	[ -f "$keyring" ] && keyopt=(--keyring="$keyring")

	mkdir -p "$WORKROOT"
	ROOTFS_PARENT=$(mktemp -d "$WORKROOT/sbx-mkimage.XXXXXX")
	local rootfs=$ROOTFS_PARENT/rootfs
	local include
	include=$(
		IFS=,
		echo "${PACKAGES[*]}"
	)

	log "debootstrap --variant=minbase $SUITE (+ $include) into $rootfs"
	local t0=$SECONDS
	# Run in its own session, in the background, so that a SIGTERM/SIGINT to
	# this script is handled at once (bash defers traps until a foreground
	# child exits) and the cleanup can stop debootstrap and its dpkg children.
	setsid debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" "${keyopt[@]}" \
		--include="$include" "$SUITE" "$rootfs" "$MIRROR" \
		>"$ROOTFS_PARENT/debootstrap.log" 2>&1 </dev/null &
	DEBOOTSTRAP_PID=$!
	local drc=0
	wait "$DEBOOTSTRAP_PID" || drc=$?
	DEBOOTSTRAP_PID=""
	if [ "$drc" -ne 0 ]; then
		tail -n 40 "$ROOTFS_PARENT/debootstrap.log" >&2 || true
		[ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 40 "$rootfs/debootstrap/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	log "debootstrap done in $((SECONDS - t0))s"

	log "trimming the rootfs (apt caches and lists, docs, man pages)"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
		"$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/debootstrap
	# keep the copyright files, drop the rest of /usr/share/doc
	find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	# message catalogues (the image runs with LANG=C.UTF-8, built into libc)
	find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
	# docker supplies these at run time
	: >"$rootfs/etc/hostname"
	: >"$rootfs/etc/resolv.conf"
	rm -f "$rootfs/etc/machine-id" && : >"$rootfs/etc/machine-id"

	# sanity check the tools the sandbox relies on
	local tool
	for tool in bash python3 git ps curl less su useradd; do
		chroot "$rootfs" /bin/sh -c "command -v $tool" >/dev/null 2>&1 ||
			die "$tool is missing from the rootfs"
	done

	log "importing into docker as $TAG"
	t0=$SECONDS
	tar --numeric-owner -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
		docker import \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--change 'WORKDIR /' \
			--change 'CMD ["/bin/bash"]' \
			--change "LABEL sbx.recipe=$RECIPE" \
			--change "LABEL sbx.suite=$SUITE" \
			--message "debootstrap --variant=minbase $SUITE + ${PACKAGES[*]}" \
			- "$TAG" >/dev/null
	log "import done in $((SECONDS - t0))s"

	rm -rf --one-file-system "$ROOTFS_PARENT"
	ROOTFS_PARENT=""
}

# find_bootstrapped prints the ID of an image `sbx image bootstrap` made
# (labelled dev.sbx.kind=base, one layer: an import, not an image built
# FROM one) for $SUITE with every package of PACKAGES, or nothing. Its
# import message says what it was made from: "debootstrap --variant=minbase
# SUITE + PKG...".
find_bootstrapped() {
	local id comment layers p ok
	for id in $(docker images --no-trunc -q --filter label=dev.sbx.kind=base 2>/dev/null | sort -u); do
		layers=$(docker image inspect --format '{{len .RootFS.Layers}}' "$id" 2>/dev/null) || continue
		[ "$layers" = 1 ] || continue
		comment=$(docker image inspect --format '{{.Comment}}' "$id" 2>/dev/null) || continue
		case $comment in
		"debootstrap --variant=minbase $SUITE + "*) ;;
		*) continue ;;
		esac
		ok=1
		for p in "${PACKAGES[@]}"; do
			case " ${comment#* + } " in
			*" $p "*) ;;
			*) ok=0; break ;;
			esac
		done
		if [ "$ok" = 1 ]; then
			echo "$id"
			return 0
		fi
	done
}

# build_from_bootstrapped ID: $TAG gets the root file system of image ID,
# with this script's configuration and labels only (a `docker build FROM`
# would inherit the dev.sbx.* labels, and the test image would then pass
# for a bootstrapped base image).
build_from_bootstrapped() {
	local from=$1 cid
	log "copying the root file system of the bootstrapped image ${from#sha256:} into $TAG (no debootstrap)"
	cid=$(docker create --label sbx.test=1 "$from" true) || die "docker create $from failed"
	if ! docker export "$cid" |
		docker import \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--change 'WORKDIR /' \
			--change 'CMD ["/bin/bash"]' \
			--change "LABEL sbx.recipe=$RECIPE" \
			--change "LABEL sbx.suite=$SUITE" \
			--change "LABEL sbx.from=$from" \
			--message "$(docker image inspect --format '{{.Comment}}' "$from") (copied from ${from#sha256:})" \
			- "$TAG" >/dev/null; then
		docker rm -f "$cid" >/dev/null 2>&1 || true
		die "copying $from into $TAG failed"
	fi
	docker rm -f "$cid" >/dev/null 2>&1 || true
}

build_nouseradd() {
	local base_id=$1
	log "building $NOUSERADD_TAG FROM $TAG (useradd & co. removed)"
	# The classic builder resolves FROM against local images only when the
	# image exists locally, which it does; it never needs a registry here.
	local errlog
	errlog=$(mktemp)
	if ! DOCKER_BUILDKIT=0 docker build --quiet --label "sbx.base.id=$base_id" \
		--label "sbx.recipe=$RECIPE" -t "$NOUSERADD_TAG" - >/dev/null 2>"$errlog" <<EOF; then
FROM $TAG
RUN set -e; \
    for t in useradd usermod userdel groupadd groupmod groupdel adduser addgroup deluser delgroup newusers; do \
        for d in /usr/sbin /usr/bin /sbin /bin /usr/local/sbin /usr/local/bin; do rm -f "\$d/\$t"; done; \
    done; \
    for t in useradd usermod groupadd adduser; do \
        if command -v "\$t" >/dev/null 2>&1; then echo "\$t still present" >&2; exit 1; fi; \
    done
EOF
		# the legacy builder's deprecation notice is noise; show it only with an error
		cat "$errlog" >&2
		rm -f "$errlog"
		die "docker build of $NOUSERADD_TAG failed"
	fi
	rm -f "$errlog"
}

# Images replaced by this run; removed at the end if nothing else uses them.
OLD_IDS=("$(image_id "$NOUSERADD_TAG")" "$(image_id "$TAG")")

# --- base image -------------------------------------------------------------
if [ "$FORCE" -eq 0 ] && [ -n "$(image_id "$TAG")" ] && [ "$(image_label "$TAG" sbx.recipe)" = "$RECIPE" ]; then
	log "$TAG exists (recipe $RECIPE); reusing it (--force rebuilds)"
else
	if [ -n "$(image_id "$TAG")" ] && [ "$FORCE" -eq 0 ]; then
		log "$TAG exists but was built from another recipe; rebuilding"
	fi
	BOOTSTRAPPED=""
	[ "$FORCE" -eq 1 ] || BOOTSTRAPPED=$(find_bootstrapped)
	if [ -n "$BOOTSTRAPPED" ]; then
		t0=$SECONDS
		build_from_bootstrapped "$BOOTSTRAPPED"
		log "$TAG made from the bootstrapped image in $((SECONDS - t0))s"
	else
		build_base
	fi
fi
BASE_ID=$(image_id "$TAG")
[ -n "$BASE_ID" ] || die "$TAG is missing after the build"

# --- derived image without useradd ----------------------------------------
if [ "$FORCE" -eq 0 ] && [ "$(image_label "$NOUSERADD_TAG" sbx.base.id)" = "$BASE_ID" ] &&
	[ "$(image_label "$NOUSERADD_TAG" sbx.recipe)" = "$RECIPE" ]; then
	log "$NOUSERADD_TAG exists and derives from the current $TAG; reusing it"
else
	t0=$SECONDS
	build_nouseradd "$BASE_ID"
	log "$NOUSERADD_TAG built in $((SECONDS - t0))s"
fi

for id in "${OLD_IDS[@]}"; do
	if [ -n "$id" ] && [ "$id" != "$BASE_ID" ] && [ "$id" != "$(image_id "$NOUSERADD_TAG")" ]; then
		if docker image rm "$id" >/dev/null 2>&1; then
			log "removed the replaced image ${id#sha256:}"
		fi
	fi
done

# quick smoke test of both images (cheap, proves they run)
docker run --rm --network none "$TAG" sh -c 'command -v useradd >/dev/null && python3 -c "import sys" && git --version >/dev/null' ||
	die "$TAG does not pass its smoke test"
docker run --rm --network none "$NOUSERADD_TAG" sh -c '! command -v useradd >/dev/null && python3 -c "import sys"' ||
	die "$NOUSERADD_TAG does not pass its smoke test"

log "ready: $TAG ($(image_size_mb "$TAG")), $NOUSERADD_TAG ($(image_size_mb "$NOUSERADD_TAG")) in $((SECONDS - START))s total"
