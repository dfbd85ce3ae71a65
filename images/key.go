package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// tagPrefix starts every tag arbor gives a built image, so its tags are told
// apart from a CI's in a shared repository.
const tagPrefix = "arbor-"

// keyVersion changes when what goes into a Key changes, so that old tags are
// never taken for new inputs.
const keyVersion = "arbor image key v1"

// Key is the content key of one build's inputs: the context directory's
// content (contextKey: its git tree hash, or ContextHash), the Dockerfile's
// bytes, the build args and the target. Two builds with the same key produce
// the same image, so the image is tagged with it and built once: a commit
// that does not touch a service's context, Dockerfile or args, and every
// branch off the same base, reuse it.
func Key(contextKey string, dockerfile []byte, args map[string]string, target string) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s\n", len(s), s) }
	field(keyVersion)
	field(contextKey)
	sum := sha256.Sum256(dockerfile)
	field(hex.EncodeToString(sum[:]))
	keys := sortedKeys(args)
	fmt.Fprintf(h, "%d args\n", len(keys))
	for _, k := range keys {
		field(k)
		field(args[k])
	}
	field(target)
	return hex.EncodeToString(h.Sum(nil))
}

// tag is the registry tag of a key.
func tag(key string) string { return tagPrefix + key[:48] }
