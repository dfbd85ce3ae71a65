package inventory

// The label that marks what arbor created. Its one definition: render puts it
// on every object, the engine (apply) prunes and deletes only objects that
// carry it, and the record's ConfigMap carries it too. Labels that identify an
// install belong next to it.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "arbor"
)

// Owner labels: which arbor install, app and environment an object belongs
// to. render writes app and env, the daemon adds the install, the engine
// (apply) refuses to write into what another owner holds, and the record
// carries the app.
const (
	LabelInstall = "arbor.dev/install"
	LabelApp     = "arbor.dev/app"
	LabelEnv     = "arbor.dev/env"
)
