package inventory

// The label that marks what arbor created. Its one definition: render puts it
// on every object, the engine (apply) prunes and deletes only objects that
// carry it, and the record's ConfigMap carries it too. Labels that identify an
// install belong next to it.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "arbor"
)
