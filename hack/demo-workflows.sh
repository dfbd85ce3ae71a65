#!/usr/bin/env bash
# demo-workflows.sh shows arbor's release semantics on this machine:
#
#   1. builds bin/arbor and starts the local cluster (hack/cluster.sh up),
#   2. makes local git repositories from examples/shop, examples/catalog and
#      examples/storefront (which imports catalog), each with a feature branch,
#   3. starts `arbor run` with the three apps and shows each environment's
#      setup workflow: steps, tasks (the imported catalog's first) and the Job runs,
#   4. commits to catalog's feature/cart and shows storefront's feature/cart
#      environment patched with the new catalog commit,
#   5. deletes shop's feature/checkout and shows its teardown (backup job, then
#      removal), and the workflow metrics.
#
# Environment: ARBOR_DEMO_PORT (default 8089), ARBOR_DEMO_KEEP=1 leaves the
# environments in place, ARBOR_DEMO_PREFIX prefixes the app names (so the demo
# can run beside other users of the cluster), ARBOR_DEMO_NAMESPACE is arbor's own
# namespace (default arbor-system; its leader Lease lives there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${ARBOR_DEMO_PORT:-8089}
PREFIX=${ARBOR_DEMO_PREFIX:-}
SYSTEM=${ARBOR_DEMO_NAMESPACE:-arbor-system}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arbor-demo-workflows.XXXXXX")
API=http://127.0.0.1:$PORT
ARBOR_PID=
SHOP=${PREFIX}shop CATALOG=${PREFIX}catalog STOREFRONT=${PREFIX}storefront

# shellcheck source=hack/demo-lib.sh
source "$ROOT/hack/demo-lib.sh"

need git curl kubectl jq

start_cluster


# repo NAME APP BRANCH: a repository from examples/NAME, its app named APP,
# with branch main and BRANCH.
repo() {
	REPO=$WORK/$2
	mkdir -p "$REPO"
	cp -R "$ROOT/examples/$1"/. "$REPO"/
	# the app names, prefixed: the templates' app: and storefront's import
	find "$REPO" -name '*.yaml' -exec sed -i -e "s/^app: $1\$/app: $2/" -e "s/^- name: catalog\$/- name: $CATALOG/" {} +
	git init -q
	git add -A
	git commit -qm "$2: first version"
	git branch "$3"
}

# Environments of these apps left by an earlier demo must be gone first: a
# namespace still terminating cannot take the new environment's objects.
for app in "$SHOP" "$CATALOG" "$STOREFRONT"; do
	kubectl delete namespaces -l "arbor.dev/app=$app" --timeout=120s >/dev/null
done

say "Three repositories: shop, catalog, and storefront (which imports catalog)"
repo shop "$SHOP" feature/checkout
repo catalog "$CATALOG" feature/cart
repo storefront "$STOREFRONT" feature/cart
echo "  $WORK/{$SHOP,$CATALOG,$STOREFRONT}, each with main and a feature branch"

say "Starting arbor run"
kubectl create namespace "$SYSTEM" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$SYSTEM" create secret generic "$SHOP-secrets" --from-literal=POSTGRES_PASSWORD=demo-only \
	--dry-run=client -o yaml | kubectl apply -f - >/dev/null
cat >"$WORK/arbor.yaml" <<EOF
apps:
- name: $SHOP
  repo: $WORK/$SHOP
  poll_interval: 30s
  secrets_from: $SHOP-secrets
- name: $CATALOG
  repo: $WORK/$CATALOG
  poll_interval: 30s
  allow_import_by: [$STOREFRONT]
- name: $STOREFRONT
  repo: $WORK/$STOREFRONT
  poll_interval: 30s
defaults:
  domain: demo.localhost
server:
  listen: 127.0.0.1:$PORT
  anonymous_read: true   # the demo reads the status API without a token, on loopback only
  wake_listen: "off"   # no paused environments in the demo; :8081 stays free
namespace: $SYSTEM
EOF
sed 's/^/  /' "$WORK/arbor.yaml"
"$ROOT/bin/arbor" run --config "$WORK/arbor.yaml" --kubeconfig "$KUBECONFIG" \
	--cache-dir "$WORK/cache" --identity "demo-workflows-$$" \
	--lease-duration 4s --lease-renew-deadline 3s --lease-retry-period 1s \
	>"$WORK/arbor.log" 2>&1 &
ARBOR_PID=$!
echo "  arbor is pid $ARBOR_PID; its log is $WORK/arbor.log"

bind_volumes arbor-demo-workflows Retain "$SHOP" "$CATALOG" "$STOREFRONT" &

env_json() { curl -fsS "$API/api/v1/apps/$1/environments" | jq -c --arg b "$2" '.[] | select(.branch == $b)'; }
phase_is() { [[ $(env_json "$1" "$2" | jq -r '.phase // ""') == "$3" ]]; }
ready_at() { [[ $(env_json "$1" "$2" | jq -r 'select(.phase == "Ready") | .workflow.stage // ""') == "$3" ]]; }
# workflow APP BRANCH: the last workflow of an environment, one task a line.
workflow() {
	env_json "$1" "$2" | jq -r '"  \(.app)@\(.branch): \(.workflow.stage) \(.workflow.outcome)",
		(.workflow.tasks[] | "    \(.step | .[0:24] | . + " " * (24 - length)) \(if .app then .app + "/" else "" end)\(.name)  \(.state)")'
}

wait_for curl -fs "$API/readyz" -o /dev/null
say "Environments appearing, each through its setup workflow"
for e in "$SHOP main" "$SHOP feature/checkout" "$CATALOG main" "$STOREFRONT main" "$STOREFRONT feature/cart"; do
	# shellcheck disable=SC2086
	wait_for phase_is $e Ready
done
workflow "$SHOP" feature/checkout
workflow "$STOREFRONT" feature/cart
NS=$(env_json "$STOREFRONT" feature/cart | jq -r .namespace)
echo "  kubectl -n $NS get jobs,deployments:"
kubectl -n "$NS" get jobs,deployments | sed 's/^/    /'

say "A commit on catalog's feature/cart patches storefront's feature/cart environment"
REPO=$WORK/$CATALOG
git checkout -q feature/cart
git commit -q --allow-empty -m "catalog: a new search index"
MOVED=$(git rev-parse HEAD)
echo "  catalog feature/cart is now ${MOVED:0:12}"
api_commit() { kubectl -n "$NS" get deployment catalog-api -o jsonpath='{.metadata.annotations.arbor\.dev/commit}'; }
wait_for bash -c "[[ \$(kubectl -n $NS get deployment catalog-api -o jsonpath='{.metadata.annotations.arbor\.dev/commit}') == $MOVED ]]"
wait_for ready_at "$STOREFRONT" feature/cart patch
workflow "$STOREFRONT" feature/cart
echo "  catalog-api in $NS runs $(api_commit | cut -c1-12); storefront-web still runs $(kubectl -n "$NS" get deployment storefront-web -o jsonpath='{.metadata.annotations.arbor\.dev/commit}' | cut -c1-12)"

say "Deleting shop's feature/checkout: its teardown backs up, then removes the environment"
REPO=$WORK/$SHOP
SHOPNS=$(env_json "$SHOP" feature/checkout | jq -r .namespace)
git branch -D feature/checkout
wait_for bash -c "! kubectl get namespace $SHOPNS >/dev/null 2>&1"
echo "  namespace $SHOPNS is gone"
grep -E 'msg="(running workflow|deleting the environment|environment ready)"' "$WORK/arbor.log" | grep "branch=feature/checkout" |
	sed -E 's/^time=[^ ]+ //; s/^/    /' | cut -c1-160

say "Workflow metrics"
curl -fsS "$API/metrics" | grep -E '^arbor_workflow_runs_total|^arbor_workflow_task_duration_seconds_count.*stage="teardown"' | sed 's/^/  /'

say "Stopping arbor"
kill -TERM "$ARBOR_PID"
wait "$ARBOR_PID" || true
ARBOR_PID=

if [[ ${ARBOR_DEMO_KEEP:-} != 1 ]]; then
	say "Removing the demo environments"
	for app in "$SHOP" "$CATALOG" "$STOREFRONT"; do
		kubectl delete namespaces -l "arbor.dev/app=$app" --timeout=120s | sed 's/^/  /'
	done
	kubectl delete pv -l arbor-demo-workflows=true --wait=false >/dev/null 2>&1 || true
fi
echo
echo "Done. The repositories, configuration and log are in $WORK."
