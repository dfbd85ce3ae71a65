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
	hash := func(secret string, key []byte) string {
		t.Helper()
		cfg := configFrom(t, "services: [{name: web, image: x:1, envs: [{key: DB_PASSWORD, secret: true}]}]", "")
		env, err := Render(Input{Config: cfg, Context: Context{
			App: "shop", Branch: "main", Commit: strings.Repeat("a", 40),
			Secrets: map[string]string{"DB_PASSWORD": secret}, HashKey: key,
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range env.Objects {
			if o.GetKind() == "Deployment" {
				ann, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", AnnotationEnvHash)
				if ann == "" {
					t.Fatal("no env-hash annotation")
				}
				return ann
			}
		}
		t.Fatal("no Deployment")
		return ""
	}
	k1, k2 := []byte("uid-1111"), []byte("uid-2222")
	if hash("hunter2", k1) != hash("hunter2", k1) {
		t.Error("the same value and key give different hashes")
	}
	if hash("hunter2", k1) == hash("hunter3", k1) {
		t.Error("a changed secret does not change the hash: its pods would not roll")
	}
	if hash("hunter2", k1) == hash("hunter2", k2) {
		t.Error("another key gives the same hash: the key does not key it")
	}
	if hash("hunter2", k1) == hash("hunter2", nil) {
		t.Error("the keyed hash equals the unkeyed one, which anyone can compute from a guess")
	}
}
