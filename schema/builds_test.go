package schema

import (
	"reflect"
	"testing"
)

func TestBuildOf(t *testing.T) {
	tmpl := &Template{Builds: []Build{
		{Name: "api", Dockerfile: "docker/api.Dockerfile", Args: map[string]Scalar{"MODE": "preview"}},
		{Name: "web", RepoURL: "https://example.com/other.git", Context: "elsewhere"},
	}}
	cases := []struct {
		name string
		svc  Service
		want BuildSpec
		ok   bool
	}{
		{"image only", Service{Name: "db", Image: "postgres:16"}, BuildSpec{}, false},
		{"has_repo: the root", Service{Name: "worker", HasRepo: true}, BuildSpec{Context: ".", Dockerfile: "Dockerfile"}, true},
		{"build: a directory", Service{Name: "vote", Build: "./vote"}, BuildSpec{Context: "vote", Dockerfile: "Dockerfile"}, true},
		{"build: keys", Service{Name: "vote", Build: map[string]any{
			"context": "vote/", "dockerfile": "Dockerfile.prod", "target": "run", "args": map[string]any{"A": 1, "B": nil},
		}}, BuildSpec{Context: "vote", Dockerfile: "Dockerfile.prod", Target: "run", Args: map[string]string{"A": "1", "B": ""}}, true},
		{"build: compose's list of args", Service{Name: "vote", Build: map[string]any{"args": []any{"A=1", "B"}}},
			BuildSpec{Context: ".", Dockerfile: "Dockerfile", Args: map[string]string{"A": "1", "B": ""}}, true},
		{"builds: entry of the same name", Service{Name: "api", HasRepo: true},
			BuildSpec{Context: ".", Dockerfile: "docker/api.Dockerfile", Args: map[string]string{"MODE": "preview"}}, true},
		{"the service's keys win over builds:", Service{Name: "api", Build: map[string]any{"dockerfile": "Dockerfile"}},
			BuildSpec{Context: ".", Dockerfile: "Dockerfile", Args: map[string]string{"MODE": "preview"}}, true},
		{"builds: from another repository is not used", Service{Name: "web", HasRepo: true}, BuildSpec{Context: ".", Dockerfile: "Dockerfile"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := tmpl.BuildOf(&c.svc)
			if ok != c.ok || !reflect.DeepEqual(got, c.want) {
				t.Errorf("BuildOf = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
