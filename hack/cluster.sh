#!/usr/bin/env bash
# cluster.sh builds (once, cached outside the checkout) and runs arbor's local test cluster:
# a real kube-apiserver, kube-controller-manager, kube-scheduler and etcd started by kwokctl
# with its binary runtime, and fake kwok nodes in place of kubelets.
#
#   hack/cluster.sh build   build the binaries into the cache (idempotent)
#   hack/cluster.sh up      build, start the cluster if it is not running; last line: export KUBECONFIG=...
#   hack/cluster.sh down    stop and delete the cluster
#   hack/cluster.sh stop    stop the running cluster's processes, keeping its data (a cluster that went away)
#   hack/cluster.sh start   start a stopped cluster again, same address and data; waits until it answers
#
# Environment: ARBOR_CACHE (default ~/.cache/arbor), ARBOR_CLUSTER (default arbor).
set -euo pipefail

K8S_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ARBOR_CACHE:-$HOME/.cache/arbor}
CLUSTER=${ARBOR_CLUSTER:-arbor}
BIN=$CACHE/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION
export KWOK_WORKDIR=$CACHE/kwok

log() { echo "cluster: $*" >&2; }

# stamp names the inputs of a build; a binary missing from the cache is built
# whatever the stamp says, so adding a command to the tools modules builds only it.
stamp() { cat "$ROOT"/hack/tools/*/go.mod "$ROOT"/hack/tools/*/go.sum | sha256sum | cut -c1-16; }

build() {
	local want; want=$(stamp)
	if [[ -f $BIN/.stamp && $(cat "$BIN/.stamp") == "$want" && -x $BIN/kubectl ]]; then return 0; fi
	mkdir -p "$BIN"
	local ver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
	ver="$ver -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
	local c
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
		if [[ ! -x $BIN/$c ]]; then
			log "building $c $K8S_VERSION (first time only; about 15 minutes for all three on 2 cores)"
			(cd "$ROOT/hack/tools/kube" && go build -trimpath -ldflags "-s -w $ver" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c" && mv "$BIN/$c.tmp" "$BIN/$c")
		fi
	done
	if [[ ! -x $BIN/etcd ]]; then
		log "building etcd"
		(cd "$ROOT/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" . && mv "$BIN/etcd.tmp" "$BIN/etcd")
	fi
	for c in kwok kwokctl; do
		if [[ ! -x $BIN/$c ]]; then
			log "building $c $KWOK_VERSION"
			GOBIN=$BIN go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$c@$KWOK_VERSION"
		fi
	done
	echo "$want" >"$BIN/.stamp"
}

kubeconfig() { echo "$KWOK_WORKDIR/clusters/$CLUSTER/kubeconfig.yaml"; }

# stages writes the kwok Stage configuration of the cluster and prints its path.
# kwokctl drops its default stages as soon as a config names any Stage, so the
# defaults (node-initialize, node-heartbeat-with-lease, pod-ready, pod-complete,
# pod-delete) are taken from the kwok module itself, unchanged, and arbor's own
# test stages (hack/kwok/*.yaml) are added after them.
stages() {
	local dir out=$KWOK_WORKDIR/arbor-stages.yaml f
	dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $dir && -d $dir/kustomize/stage ]] || { log "cannot find the kwok $KWOK_VERSION module's stages"; return 1; }
	mkdir -p "$KWOK_WORKDIR"
	: >"$out.tmp"
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		{ echo "---"; cat "$dir/kustomize/stage/$f"; } >>"$out.tmp"
	done
	# @KWOK_WORKDIR@ in a stage file names where its companion files
	# (hack/kwok/*.log: the test containers' logs) are copied.
	cp "$ROOT"/hack/kwok/*.log "$KWOK_WORKDIR/"
	for f in "$ROOT"/hack/kwok/*.yaml; do
		{ echo "---"; sed "s|@KWOK_WORKDIR@|$KWOK_WORKDIR|g" "$f"; } >>"$out.tmp"
	done
	mv "$out.tmp" "$out"
	echo "$out"
}

running() {
	local kc; kc=$(kubeconfig)
	[[ -f $kc ]] && KUBECONFIG=$kc timeout 10 "$BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$CLUSTER" &&
		"$BIN/kubectl" --kubeconfig "$kc" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# logs serves every test container's log (hack/kwok/clusterlogs.tmpl); with
# Logs and ClusterLogs enabled as CRDs kwok reads them from the API server.
logs() {
	sed "s|@KWOK_WORKDIR@|$KWOK_WORKDIR|g" "$ROOT/hack/kwok/clusterlogs.tmpl" |
		"$BIN/kubectl" --kubeconfig "$(kubeconfig)" apply -f - >&2
}

# storage makes PersistentVolumeClaims bind: the controller-manager's test
# hostPath provisioner (enabled above) provisions a PV for every claim of the
# default StorageClass "standard". kwok runs no containers, so nothing is written.
storage() {
	"$BIN/kubectl" --kubeconfig "$(kubeconfig)" apply -f - >&2 <<-EOF
	apiVersion: storage.k8s.io/v1
	kind: StorageClass
	metadata:
	  name: standard
	  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
	provisioner: kubernetes.io/host-path
	reclaimPolicy: Delete
	volumeBindingMode: Immediate
	EOF
}

# configHash names the configuration a cluster is created with: this script
# and the stages and logs in hack/kwok/.
configHash() { cat "$ROOT"/hack/cluster.sh "$ROOT"/hack/kwok/*.yaml "$ROOT"/hack/kwok/*.log "$ROOT"/hack/kwok/*.tmpl | sha256sum | cut -c1-16; }

up() {
	build
	local mark=$KWOK_WORKDIR/clusters/$CLUSTER/arbor-config.hash
	if running && [[ $(cat "$mark" 2>/dev/null) != "$(configHash)" ]]; then
		# A test cluster holds nothing worth keeping: a stale one would run
		# the tests against other kwok stages, logs or storage.
		log "cluster $CLUSTER was created by another version of hack/cluster.sh or hack/kwok/ (kwok stages, logs, storage): recreating it"
		down
	fi
	# The controller-manager and scheduler get a client rate of 500/s (their
	# default is 20 and 50): a thousand environments' Deployments, ReplicaSets
	# and Pods otherwise queue behind the controllers' own client limit, as
	# they would on a production control plane left at its defaults.
	# There is one controller-manager and one scheduler: no leader election,
	# whose lease a loaded machine can let lapse, and the component then exits
	# for good (Jobs then never get pods).
	# kwok's Logs, ClusterLogs and PortForward resources (kwok.x-k8s.io) are
	# enabled: a test names the file a fake pod's container "logs", or the
	# address its port forwards to (docs/testing.md).
	# Keep each component's first --extra-args in the first lines, one per
	# component: kwokctl v0.8.0 indexes a component's later arguments by the
	# position of its first one among all of them (and panics otherwise).
	if ! running; then
		"$BIN/kwokctl" delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
		local cfg; cfg=$(stages)
		log "starting cluster $CLUSTER"
		"$BIN/kwokctl" create cluster --name "$CLUSTER" --runtime binary --config "$cfg" \
			--kube-apiserver-binary "$BIN/kube-apiserver" \
			--kube-controller-manager-binary "$BIN/kube-controller-manager" \
			--kube-scheduler-binary "$BIN/kube-scheduler" \
			--etcd-binary "$BIN/etcd" --kwok-controller-binary "$BIN/kwok" \
			--enable-crds Logs,ClusterLogs,PortForward \
			--extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/16 \
			--extra-args kube-controller-manager=enable-hostpath-provisioner=true \
			--extra-args kube-scheduler=kube-api-qps=500 \
			--extra-args kube-controller-manager=kube-api-qps=500 --extra-args kube-controller-manager=kube-api-burst=1000 \
			--extra-args kube-scheduler=kube-api-burst=1000 \
			--extra-args kube-controller-manager=leader-elect=false --extra-args kube-scheduler=leader-elect=false \
			--wait 2m >&2
		"$BIN/kwokctl" scale node --name "$CLUSTER" --replicas 12 >&2
		storage
		logs
		configHash >"$mark"
	fi
	echo "export KUBECONFIG=$(kubeconfig)"
}

down() {
	[[ -x $BIN/kwokctl ]] || return 0
	"$BIN/kwokctl" delete cluster --name "$CLUSTER" >&2 || true
}

# stop and start take a cluster away and bring it back as it was: the
# multi-cluster tests use them to show that a cluster that is down affects
# only its own environments.
stop() { "$BIN/kwokctl" stop cluster --name "$CLUSTER" >&2; }

start() {
	"$BIN/kwokctl" start cluster --name "$CLUSTER" >&2
	local i
	for i in $(seq 1 120); do
		if "$BIN/kubectl" --kubeconfig "$(kubeconfig)" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
			echo "export KUBECONFIG=$(kubeconfig)"
			return 0
		fi
		sleep 1
	done
	log "cluster $CLUSTER did not answer within 2 minutes of its start"
	return 1
}

case "${1:-up}" in
build) build ;;
up) up ;;
down) down ;;
stop) stop ;;
start) start ;;
bin) echo "$BIN" ;;
*) echo "usage: $0 build|up|down|stop|start|bin" >&2; exit 2 ;;
esac
