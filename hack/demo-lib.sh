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
