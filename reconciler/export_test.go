package reconciler

// OwnerOf is ownerOf for the external tests: which of replicas an app
// settles on once they all see each other live.
var OwnerOf = ownerOf
