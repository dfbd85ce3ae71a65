#!/usr/bin/env bash
# hack/image.sh builds arbor's container image from deploy/Dockerfile with
# BuildKit — the buildkitd hack/buildkit.sh builds and starts (or the one
# BUILDKIT_ADDR names) — so it builds wherever `make test` runs, with no
# container engine.
#
# The image holds the static binary `make build` makes (same flags), the CA
# certificates of this machine (Debian's ca-certificates) and a passwd entry
# for the non-root user 65532; FROM scratch, nothing is pulled.
#
#   VERSION=v1.2.3 hack/image.sh                     writes bin/arbor-image.tar (an OCI archive)
#   IMAGE=registry.example.com/arbor:v1.2.3 hack/image.sh   pushes it instead
#
# Environment: VERSION (default dev), IMAGE, OUT (default bin/arbor-image.tar),
# BUILDKIT_ADDR (default: the local buildkitd, started when not running),
# CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), GO (default go).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${VERSION:-dev}
OUT=${OUT:-$ROOT/bin/arbor-image.tar}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
GO=${GO:-go}

log() { echo "image: $*" >&2; }

[[ -f $CA_BUNDLE ]] || { log "no CA bundle at $CA_BUNDLE: install Debian's ca-certificates, or set CA_BUNDLE"; exit 1; }

if [[ -z ${BUILDKIT_ADDR:-} ]]; then
	eval "$("$ROOT/hack/buildkit.sh" up | tail -n1)"
	BUILDKIT_ADDR=$ARBOR_TEST_BUILDKIT_ADDR
fi
BUILDCTL="$("$ROOT/hack/buildkit.sh" bin)/buildctl"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# `make build` itself, writing into the staging directory.
"${MAKE:-make}" -C "$ROOT" --no-print-directory build BIN="$stage" VERSION="$VERSION" GO="$GO" >&2
cp "$CA_BUNDLE" "$stage/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$stage/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$stage/group"

output="type=oci,dest=$OUT"
if [[ -n ${IMAGE:-} ]]; then
	output="type=image,name=$IMAGE,push=true"
else
	mkdir -p "$(dirname "$OUT")"
fi
log "building arbor $VERSION with buildkitd at $BUILDKIT_ADDR"
"$BUILDCTL" --addr "$BUILDKIT_ADDR" build --progress plain \
	--frontend dockerfile.v0 --local context="$stage" --local dockerfile="$ROOT/deploy" \
	--opt filename=Dockerfile --opt build-arg:VERSION="$VERSION" --output "$output"
log "done: ${IMAGE:-$OUT}"
