package schema

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFromComposeLongForms(t *testing.T) {
	compose := `services:
  Web_App:
    image: web:1
    entrypoint: sh -c 'exec web --name "a b"'
    ports:
    - target: 80
      published: 8080
    - target: 9090
    - "53:53/udp"
    - "7000-7001:7000-7001"
    volumes:
    - type: tmpfs
      target: /tmp
    - /anonymous
    - type: bind
      source: ./conf/app.ini
      target: /etc/app.ini
    - /var/run/docker.sock:/var/run/docker.sock
    depends_on: [ghost]
    healthcheck:
      test: curl -f http://localhost/
  worker:
    image: worker:1
    healthcheck:
      disable: true
  cron:
    image: cron:1
    healthcheck:
      test: ["NONE"]
`
	fsys := fstest.MapFS{"conf/app.ini": {Data: []byte("x")}}
	res, notes := FromCompose(fsys, "compose.yaml", []byte(compose))
	if res == nil {
		t.Fatalf("no result: %v", notes)
	}
	web := res.Template.Services[0]
	if web.Name != "web-app" {
		t.Errorf("name = %q", web.Name)
	}
	if !reflect.DeepEqual(web.Command, []string{"sh", "-c", `exec web --name "a b"`}) {
		t.Errorf("command = %q", web.Command)
	}
	var ports []string
	for _, p := range web.Ports {
		s := p.Type + ":" + strconv.Itoa(int(p.Port))
		if p.TargetPort != nil {
			s += "->" + strconv.Itoa(int(*p.TargetPort))
		}
		ports = append(ports, s)
	}
	if want := []string{"node_port:8080->80", "container_port:9090", "node_port:53->53", "node_port:7000->7000"}; !reflect.DeepEqual(ports, want) {
		t.Errorf("ports = %v, want %v", ports, want)
	}
	wantVols := []Volume{{Name: "tmp", Type: "empty_dir", MountPath: "/tmp"}, {Name: "anonymous", Type: "empty_dir", MountPath: "/anonymous"}}
	if !reflect.DeepEqual(web.Volumes, wantVols) {
		t.Errorf("volumes = %+v", web.Volumes)
	}
	if len(web.ConfigMap) != 1 || web.ConfigMap[0] != (ConfigMapFile{Name: "web-app-app-ini", MountPath: "/etc/app.ini", RepoPath: "conf/app.ini"}) {
		t.Errorf("configmap = %+v", web.ConfigMap)
	}
	if web.ReadinessProbe == nil || !reflect.DeepEqual(web.ReadinessProbe.Exec.Command, []string{"/bin/sh", "-c", "curl -f http://localhost/"}) {
		t.Errorf("probe = %+v", web.ReadinessProbe)
	}
	if len(web.DependsOn) != 0 {
		t.Errorf("depends_on = %v", web.DependsOn)
	}
	if res.Template.Services[1].ReadinessProbe != nil || res.Template.Services[2].ReadinessProbe != nil {
		t.Error("disabled healthchecks became probes")
	}
	for _, want := range []string{
		`service "Web_App" is named "web-app"`,
		"protocol udp is not supported",
		"port ranges are not supported",
		"host path /var/run/docker.sock cannot be mounted",
		`depends on "ghost", which is not a service of this file`,
	} {
		found := false
		for _, n := range notes {
			found = found || strings.Contains(n.Message, want)
		}
		if !found {
			t.Errorf("no note %q in %v", want, notes)
		}
	}
}

func TestFromComposeRejectsNonCompose(t *testing.T) {
	for _, in := range []string{"", "services: []\n", "just: text\n", "services: {"} {
		res, notes := FromCompose(nil, "c.yml", []byte(in))
		if res != nil || !notes.HasErrors() {
			t.Errorf("%q: result %v, findings %v", in, res, notes)
		}
	}
}

func TestShellWords(t *testing.T) {
	tests := map[string][]string{
		`a b  c`:           {"a", "b", "c"},
		`a "b c" 'd e'`:    {"a", "b c", "d e"},
		`a\ b "c\"d"`:      {"a b", `c"d`},
		`x="1 2"`:          {"x=1 2"},
		`sh -c 'echo $HI'`: {"sh", "-c", "echo $HI"},
	}
	for in, want := range tests {
		got, err := shellWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := shellWords(`a "b`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
