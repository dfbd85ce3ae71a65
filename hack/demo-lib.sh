# demo-lib.sh holds what hack/demo.sh and hack/demo-workflows.sh share. Source
# it after setting ROOT, WORK (the scene's scratch directory, with arbor.log)
# and ARBOR_PID (empty until arbor starts); git() works in $REPO.

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# cleanup stops arbor when the scene ends, however it ends.
cleanup() {
	if [[ -n $ARBOR_PID ]] && kill -0 "$ARBOR_PID" 2>/dev/null; then
		kill -TERM "$ARBOR_PID" 2>/dev/null || true
		wait "$ARBOR_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# need TOOL... stops the scene when a command is missing.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is needed"
	done
}

# start_cluster builds bin/arbor, starts the local cluster and exports its KUBECONFIG.
start_cluster() {
	say "Building arbor and starting the local cluster"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o bin/arbor ./cmd/arbor)
	KUBECONFIG=$("$ROOT/hack/cluster.sh" up | tail -n1 | sed 's/^export KUBECONFIG=//')
	export KUBECONFIG
	kubectl get --raw /readyz >/dev/null || die "the cluster is not ready"
}

git() { command git -C "$REPO" -c user.name=demo -c user.email=demo@example.com -c init.defaultBranch=main "$@"; }

# wait_for CMD... runs CMD every second until it succeeds, for at most 180
# seconds; it gives up at once, with arbor's last log lines, if arbor exits.
wait_for() {
	local i
	for ((i = 0; i < 180; i++)); do
		if "$@"; then return 0; fi
		kill -0 "$ARBOR_PID" 2>/dev/null || { tail -n 30 "$WORK/arbor.log" >&2; die "arbor exited"; }
		sleep 1
	done
	tail -n 30 "$WORK/arbor.log" >&2
	die "timed out waiting for: $*"
}

# bind_volumes LABEL RECLAIM APP... binds each pending claim of the apps'
# environments to a hostPath volume (labelled LABEL=true, reclaim policy
# RECLAIM), as a provisioner would, while arbor runs: kwok's cluster has no
# storage provisioner.
bind_volumes() {
	local label=$1 reclaim=$2 app
	shift 2
	while kill -0 "$ARBOR_PID" 2>/dev/null; do
		for app in "$@"; do
			kubectl get pvc -A -l "arbor.dev/app=$app" --no-headers \
				-o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,PHASE:.status.phase,SIZE:.spec.resources.requests.storage 2>/dev/null |
				while read -r ns name phase size; do
					[[ $phase == Pending ]] || continue
					kubectl apply -f - >/dev/null 2>&1 <<PV || true
apiVersion: v1
kind: PersistentVolume
metadata: {name: demo-$ns-$name, labels: {$label: "true"}}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: $reclaim
  hostPath: {path: /tmp/arbor-demo-volumes/$ns-$name}
  claimRef: {namespace: $ns, name: $name}
PV
				done
		done
		sleep 2
	done
}
