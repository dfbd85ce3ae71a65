#!/usr/bin/env bash
# demo.sh shows arbor's main job on this machine, from a fresh clone:
#
#   1. builds bin/arbor and starts the local cluster (hack/cluster.sh up),
#   2. makes a local git repository from examples/shop with three branches,
#   3. starts `arbor run` against both and shows the environments appearing,
#   4. deletes one branch and shows its environment disappearing,
#   5. stops arbor.
#
# `make demo` runs it. Environment: ARBOR_DEMO_PORT (default 8088),
# ARBOR_DEMO_KEEP=1 leaves the environments in place afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${ARBOR_DEMO_PORT:-8088}
APP=shop
EXAMPLE=$ROOT/examples/$APP
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arbor-demo.XXXXXX")
API=http://127.0.0.1:$PORT
ARBOR_PID=

# shellcheck source=hack/demo-lib.sh
source "$ROOT/hack/demo-lib.sh"

[[ -d $EXAMPLE ]] || die "examples/$APP is missing"
need git curl kubectl

start_cluster

say "A git repository from examples/$APP, with three branches"
REPO=$WORK/$APP
mkdir -p "$REPO"
cp -R "$EXAMPLE"/. "$REPO"/
git init -q
git add -A
git commit -qm "shop: first version"
for b in feature/checkout feature/search; do
	git branch "$b"
done
git branch --list | sed 's/^/  /'

say "Starting arbor run"
kubectl create namespace arbor-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# examples/shop reads POSTGRES_PASSWORD from the Secret named by secrets_from.
kubectl -n arbor-system create secret generic shop-secrets --from-literal=POSTGRES_PASSWORD=demo-only \
	--dry-run=client -o yaml | kubectl apply -f - >/dev/null
cat >"$WORK/arbor.yaml" <<EOF
apps:
- name: $APP
  repo: $REPO
  poll_interval: 30s
  secrets_from: shop-secrets
defaults:
  domain: demo.localhost
server:
  listen: 127.0.0.1:$PORT
  anonymous_read: true   # the demo reads the status API without a token, on loopback only
  wake_listen: "off"   # no paused environments in the demo; :8081 stays free
namespace: arbor-system
EOF
sed 's/^/  /' "$WORK/arbor.yaml"
"$ROOT/bin/arbor" run --config "$WORK/arbor.yaml" --kubeconfig "$KUBECONFIG" \
	--cache-dir "$WORK/cache" --lease-duration 4s --lease-renew-deadline 3s --lease-retry-period 1s \
	>"$WORK/arbor.log" 2>&1 &
ARBOR_PID=$!
echo "  arbor is pid $ARBOR_PID; its log is $WORK/arbor.log"

environments() { curl -fsS "$API/api/v1/apps/$APP/environments"; }
ready_count() { environments | grep -c '"phase": "Ready"' || true; }
all_ready() { [[ $(ready_count) -eq $1 ]]; }
show() {
	echo "  status API ($API/api/v1/apps/$APP/environments):"
	environments | grep -E '"(branch|phase|namespace|commit)"' | sed -E 's/^ +/    /'
	echo "  kubectl get namespaces -l arbor.dev/app=$APP:"
	kubectl get namespaces -l "arbor.dev/app=$APP" | sed 's/^/    /'
}

if ! kubectl get storageclass standard >/dev/null 2>&1; then
	bind_volumes arbor-demo Delete "$APP" &
fi

wait_for curl -fs "$API/readyz" -o /dev/null
say "Environments appearing"
wait_for all_ready 3
show

say "Deleting branch feature/search"
git branch -D feature/search
wait_for bash -c "! kubectl get namespaces -l arbor.dev/app=$APP -o name | grep -q search"
wait_for all_ready 2
show

say "Stopping arbor"
kill -TERM "$ARBOR_PID"
wait "$ARBOR_PID" || true
ARBOR_PID=
tail -n 3 "$WORK/arbor.log" | sed 's/^/  /'

if [[ ${ARBOR_DEMO_KEEP:-} != 1 ]]; then
	say "Removing the demo environments"
	# Wait (bounded) so that a demo started next finds no namespace of this app still terminating.
	kubectl delete namespaces -l "arbor.dev/app=$APP" --timeout=120s | sed 's/^/  /'
	kubectl delete pv -l arbor-demo=true --wait=false >/dev/null 2>&1 || true
fi
echo
echo "Done. The repository, configuration and log are in $WORK."
