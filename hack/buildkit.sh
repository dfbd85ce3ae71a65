#!/usr/bin/env bash
# buildkit.sh builds (once, cached outside the checkout) and runs what arbor's image tests
# talk to: a BuildKit daemon (buildkitd, with Debian's runc and the native snapshotter, as
# root, on a unix socket) and a container registry (the distribution registry, on a
# loopback port, plain HTTP, in-memory storage, with notifications sent to a test hook).
#
#   hack/buildkit.sh build   build the binaries into the cache (idempotent)
#   hack/buildkit.sh up      build, start buildkitd and the registry if they are not running;
#                            last line: export ARBOR_TEST_BUILDKIT_ADDR=... ARBOR_TEST_REGISTRY=...
#   hack/buildkit.sh env     print that line only (fails when they are not running)
#   hack/buildkit.sh down    stop both and delete their data
#   hack/buildkit.sh bin     print the directory of the binaries
#
# Environment: ARBOR_CACHE (default ~/.cache/arbor), ARBOR_BUILDKIT (instance name,
# default arbor), ARBOR_REGISTRY_PORT (default: a free port near 5000 chosen from the name).
set -euo pipefail

BUILDKIT_VERSION=v0.34.2
REGISTRY_VERSION=v3.1.2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ARBOR_CACHE:-$HOME/.cache/arbor}
NAME=${ARBOR_BUILDKIT:-arbor}
BIN=$CACHE/bin/buildkit-$BUILDKIT_VERSION-registry-$REGISTRY_VERSION
WORK=$CACHE/buildkit/$NAME

log() { echo "buildkit: $*" >&2; }

# stamp names the inputs of the build: the versions and this script's build functions.
stamp() { { echo "$BUILDKIT_VERSION $REGISTRY_VERSION"; declare -f build buildModule; } | sha256sum | cut -c1-16; }

# buildModule MODULE@VERSION OUT PKG... builds the packages inside a writable copy of the
# module's own directory, so its go.mod (replace and exclude lines, which `go install
# pkg@version` refuses) and go.sum apply.
buildModule() {
	local mod=$1 out=$2; shift 2
	local dir src=$BIN/src/${mod//[\/@]/_}
	dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS= go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $dir && -f $dir/go.mod ]] || { log "cannot download the $mod module"; return 1; }
	rm -rf "$src" "$src.tmp"
	mkdir -p "$(dirname "$src")"
	cp -r "$dir" "$src.tmp"
	chmod -R u+w "$src.tmp"
	mv "$src.tmp" "$src"
	local p
	for p in "$@"; do
		log "building $(basename "$p") from $mod (first time only)"
		(cd "$src" && GOFLAGS= CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w" -o "$out/$(basename "$p").tmp" "$p" &&
			mv "$out/$(basename "$p").tmp" "$out/$(basename "$p")")
	done
	rm -rf "$src"
}

build() {
	local want; want=$(stamp)
	if [[ -f $BIN/.stamp && $(cat "$BIN/.stamp") == "$want" && -x $BIN/buildkitd && -x $BIN/buildctl && -x $BIN/registry ]]; then
		return 0
	fi
	mkdir -p "$BIN"
	local start=$SECONDS
	buildModule "github.com/moby/buildkit@$BUILDKIT_VERSION" "$BIN" ./cmd/buildkitd ./cmd/buildctl
	buildModule "github.com/distribution/distribution/v3@$REGISTRY_VERSION" "$BIN" ./cmd/registry
	log "built in $((SECONDS - start)) s"
	echo "$want" >"$BIN/.stamp"
}

# listening tells whether something accepts connections on loopback port $1.
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port prints the registry's port: ARBOR_REGISTRY_PORT, or the first free port from a
# start derived from the instance name, so two instances rarely collide.
port() {
	if [[ -n ${ARBOR_REGISTRY_PORT:-} ]]; then echo "$ARBOR_REGISTRY_PORT"; return; fi
	local p=$((5000 + $(printf '%s' "$NAME" | cksum | cut -d' ' -f1) % 500)) i
	for ((i = 0; i < 200; i++, p++)); do
		listening "$p" || { echo "$p"; return; }
	done
	log "no free port in 5000-5700"; return 1
}

# pidOf NAME prints the pid of the process this script started as NAME (buildkitd or
# registry) for the instance, if it still runs: the pid file's process, checked to run
# on this instance's files, so a stale pid file never names someone else's process.
pidOf() {
	local p; p=$(cat "$WORK/$1.pid" 2>/dev/null) || return 1
	[[ $p =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$WORK/" && echo "$p"
}

addr() { echo "unix://$WORK/buildkitd.sock"; }

buildkitdAnswers() { "$BIN/buildctl" --addr "$(addr)" debug workers >/dev/null 2>&1; }

registryAnswers() {
	timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n1 <&3" 2>/dev/null | grep -q ' 200 '
}

running() {
	pidOf buildkitd >/dev/null && pidOf registry >/dev/null && [[ -f $WORK/port ]] &&
		buildkitdAnswers && registryAnswers "$(cat "$WORK/port")"
}

# configure writes buildkitd's and the registry's configuration for registry port $1.
configure() {
	# Base images come from the loopback registry over plain HTTP.
	cat >"$WORK/buildkitd.toml" <<-EOF
	[worker.oci]
	  gc = true
	  gckeepstorage = "4GB"
	[registry."127.0.0.1:$1"]
	  http = true
	EOF
	cat >"$WORK/registry.yml" <<-EOF
	version: 0.1
	log:
	  level: warn
	storage:
	  inmemory: {}
	http:
	  addr: 127.0.0.1:$1
	EOF
	echo "$1" >"$WORK/port"
}

# waitFor NAME CHECK... waits up to a minute for CHECK to pass while NAME still runs.
waitFor() {
	local what=$1 i; shift
	for ((i = 0; i < 60; i++)); do
		"$@" && return 0
		pidOf "$what" >/dev/null || break
		sleep 1
	done
	log "$what did not answer (log: $WORK/$what.log)"; tail -n 30 "$WORK/$what.log" >&2; return 1
}

start() {
	local p; p=$(cat "$WORK/port")
	local runc; runc=$(command -v runc)
	log "starting buildkitd on $(addr) and the registry on 127.0.0.1:$p (logs: $WORK)"
	# setsid: both outlive this script and an interrupt of the make that ran it.
	setsid "$BIN/buildkitd" --root "$WORK/root" --addr "$(addr)" --config "$WORK/buildkitd.toml" \
		--oci-worker-snapshotter=native --oci-worker-binary="$runc" --containerd-worker=false \
		>>"$WORK/buildkitd.log" 2>&1 </dev/null &
	echo $! >"$WORK/buildkitd.pid"
	setsid "$BIN/registry" serve "$WORK/registry.yml" >>"$WORK/registry.log" 2>&1 </dev/null &
	echo $! >"$WORK/registry.pid"
	waitFor buildkitd buildkitdAnswers
	waitFor registry registryAnswers "$p"
}

# aptInstall PKG installs a Debian package as root (apt-get update first when the lists are old).
aptInstall() {
	[[ $(id -u) == 0 ]] || { log "$1 is missing: install it (apt-get install $1)"; return 1; }
	log "installing $1"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null; }
}

# needTools installs Debian's runc (buildkitd's OCI worker runs RUN steps with it) and
# busybox-static (the tests' base image for RUN steps is made from it) when missing.
needTools() {
	command -v runc >/dev/null || aptInstall runc
	command -v busybox >/dev/null || aptInstall busybox-static
}

envLine() {
	echo "export ARBOR_TEST_BUILDKIT_ADDR=$(addr) ARBOR_TEST_REGISTRY=127.0.0.1:$(cat "$WORK/port") ARBOR_TEST_REGISTRY_BIN=$BIN/registry ARBOR_TEST_BUILDKITD_BIN=$BIN/buildkitd"
}

up() {
	[[ $(id -u) == 0 ]] || { log "buildkitd with the native snapshotter and runc runs as root here"; return 1; }
	build
	needTools
	if ! running; then
		stop
		rm -rf "$WORK"
		mkdir -p "$WORK"
		configure "$(port)"
		start
	fi
	envLine
}

# stop ends what this script started for the instance (by its pid files), if anything.
stop() {
	local n p i
	for n in buildkitd registry; do
		p=$(pidOf "$n") || continue
		kill "$p"
		for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
		kill -0 "$p" 2>/dev/null && { log "$n (pid $p) did not stop within 30 s"; return 1; }
	done
	return 0
}

down() {
	stop
	# buildkitd's native snapshots may hold read-only files: make them removable first.
	[[ -d $WORK ]] && chmod -R u+w "$WORK" 2>/dev/null
	rm -rf "$WORK"
}

case "${1:-up}" in
build) build ;;
up) up ;;
env) running || { log "not running: run '$0 up'"; exit 1; }; envLine ;;
down) down ;;
bin) echo "$BIN" ;;
*) echo "usage: $0 build|up|env|down|bin" >&2; exit 2 ;;
esac
