package render

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestEnvHashKeyed: with a HashKey the env-hash annotation changes with a
// secret's value and with nothing else, and cannot be computed without the
// key: another key gives another hash.
func TestEnvHashKeyed(t *testing.T) {
	// hashes gives the env-hash annotation and the configuration hash, the
	// two digests that cover secret values.
	hashes := func(secret string, key []byte) [2]string {
		t.Helper()
		cfg := configFrom(t, "services: [{name: web, image: x:1, envs: [{key: DB_PASSWORD, secret: true}]}]", "")
		env, err := Render(Input{Config: cfg, Context: Context{
			App: "shop", Branch: "main", Commit: strings.Repeat("a", 40),
			Secrets: map[string]string{"DB_PASSWORD": secret}, HashKey: key,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if env.ConfigHash == "" {
			t.Fatal("no configuration hash")
		}
		for _, o := range env.Objects {
			if o.GetKind() == "Deployment" {
				ann, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", AnnotationEnvHash)
				if ann == "" {
					t.Fatal("no env-hash annotation")
				}
				return [2]string{ann, env.ConfigHash}
			}
		}
		t.Fatal("no Deployment")
		return [2]string{}
	}
	k1, k2 := []byte("uid-1111"), []byte("uid-2222")
	base := hashes("hunter2", k1)
	same, changed, otherKey, unkeyed := hashes("hunter2", k1), hashes("hunter3", k1), hashes("hunter2", k2), hashes("hunter2", nil)
	for i, name := range []string{"env-hash", "configuration hash"} {
		if base[i] != same[i] {
			t.Errorf("%s: the same value and key give different hashes", name)
		}
		if base[i] == changed[i] {
			t.Errorf("%s: a changed secret does not change the hash", name)
		}
		if base[i] == otherKey[i] {
			t.Errorf("%s: another key gives the same hash: the key does not key it", name)
		}
		if base[i] == unkeyed[i] {
			t.Errorf("%s: the keyed hash equals the unkeyed one, which anyone can compute from a guess", name)
		}
	}
}
