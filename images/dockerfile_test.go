package images

import (
	"strings"
	"testing"
)

func TestCheckDockerfileRefuses(t *testing.T) {
	allowed, err := newAllowList([]string{"registry.example.com", "docker.io/library"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, df string
		args     map[string]string
		target   string
		want     string // "" means accepted
	}{
		{"scratch", "FROM scratch\nCOPY . /\n", nil, "", ""},
		{"allowed registry", "FROM registry.example.com/base:1\nRUN make\n", nil, "", ""},
		{"allowed docker hub prefix", "FROM busybox:1.36\n", nil, "", ""},
		{"earlier stage", "FROM registry.example.com/go AS build\nRUN go build\nFROM scratch\nCOPY --from=build /app /app\nCOPY --from=0 /x /x\n", nil, "", ""},
		{"target", "FROM scratch AS one\nFROM scratch AS two\n", nil, "two", ""},
		{"foreign registry", "FROM scratch\nFROM evil.example.com/x:1\n", nil, "", "Dockerfile:2: FROM evil.example.com/x:1: base images may only come from"},
		{"docker hub outside the prefix", "FROM someone/tool\n", nil, "", "Dockerfile:1: FROM someone/tool"},
		{"foreign through a global ARG default", "ARG BASE=evil.example.com/x\nFROM ${BASE}\n", nil, "", "Dockerfile:2: FROM evil.example.com/x"},
		{"foreign through a build arg", "ARG BASE=registry.example.com/ok\nFROM $BASE\n", map[string]string{"BASE": "evil.example.com/y"}, "", "Dockerfile:2: FROM evil.example.com/y"},
		{"copy from a foreign image", "FROM scratch\nCOPY --from=evil.example.com/x /a /a\n", nil, "", "Dockerfile:2: COPY --from evil.example.com/x"},
		{"run mount from a foreign image", "FROM registry.example.com/b\nRUN --mount=from=evil.example.com/x,target=/x true\n", nil, "", "Dockerfile:2: RUN --mount from= evil.example.com/x"},
		{"add url", "FROM scratch\n\nADD https://example.com/x.tgz /x\n", nil, "", "Dockerfile:3: ADD https://example.com/x.tgz: URL and git sources are refused"},
		{"add git", "FROM scratch\nADD git@github.com:a/b.git /src\n", nil, "", "Dockerfile:2: ADD git@github.com:a/b.git"},
		{"syntax directive", "# syntax=docker/dockerfile:1\nFROM scratch\n", nil, "", "Dockerfile:1: syntax directive \"docker/dockerfile:1\""},
		{"host network", "FROM registry.example.com/b\nRUN --network=host true\n", nil, "", "Dockerfile:2: RUN --network=host"},
		{"insecure", "FROM registry.example.com/b\nRUN --security=insecure true\n", nil, "", "Dockerfile:2: RUN --security=insecure"},
		{"buildkit arg", "FROM scratch\n", map[string]string{"BUILDKIT_SYNTAX": "evil/frontend"}, "", "build arg BUILDKIT_SYNTAX"},
		{"missing target", "FROM scratch AS one\n", nil, "two", "target \"two\": no stage"},
		{"unknown instruction", "FROM scratch\nFROBNICATE x\n", nil, "", "Dockerfile:2: unknown instruction: FROBNICATE"},
		{"too large", strings.Repeat("#\n", MaxDockerfileSize), nil, "", "more than the"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDockerfile("Dockerfile", []byte(tc.df), tc.args, tc.target, allowed)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAllowListAndPolicy(t *testing.T) {
	a, err := newAllowList([]string{"docker.io", "ghcr.io/acme", "127.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range a.sourcePolicy().Rules {
		ids = append(ids, r.Action.String()+" "+r.Selector.Identifier)
	}
	want := "DENY * ALLOW local://* ALLOW docker-image://docker.io/* ALLOW docker-image://ghcr.io/acme/* ALLOW docker-image://127.0.0.1:5000/*"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("policy %s\nwant %s", got, want)
	}
	if _, err := newAllowList([]string{"not a host"}); err == nil {
		t.Fatal("a bad entry was accepted")
	}
}
