package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/arbordev/arbor/schema"
)

const composeYAML = `services:
  web:
    build:
      context: ./web
      dockerfile: Dockerfile.dev
    entrypoint: ["/docker-entrypoint.sh"]
    command: bundle exec rails s -b "0.0.0.0"
    ports:
    - "5000:80"
    - 127.0.0.1:8443:443/tcp
    - "9000"
    expose: ["9100"]
    depends_on: [db, cache]
    environment:
    - RAILS_ENV=development
    - SECRET_KEY_BASE
    volumes:
    - ./config/app.yml:/app/config/app.yml:ro
    deploy:
      resources:
        limits:
          memory: 1g
          cpus: "0.5"
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
      PGDATA: /var/lib/postgresql/data/pgdata
    volumes:
    - pg_data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 10s
      timeout: 5s
      retries: 5
      start_period: 1m
    mem_limit: 512m
  cache:
    image: redis:7
    depends_on:
      db:
        condition: service_healthy
volumes:
  pg_data: {}
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInitConvertsCompose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My_Shop")
	writeFile(t, filepath.Join(dir, "docker-compose.yml"), composeYAML)
	writeFile(t, filepath.Join(dir, "config", "app.yml"), "a: 1\n")
	var out, errs bytes.Buffer
	if err := runInit(&out, &errs, dir, initOptions{}); err != nil {
		t.Fatalf("init: %v\n%s", err, errs.String())
	}
	cfg, findings, err := schema.Load(os.DirFS(dir), schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if findings.HasErrors() {
		t.Fatalf("init output does not validate: %v", findings)
	}
	if cfg.Form != schema.FormPointer || cfg.EnvVarsFile != schema.DefaultEnvVarsFile {
		t.Errorf("form %s, env file %q", cfg.Form, cfg.EnvVarsFile)
	}
	tm := cfg.Template
	if tm.App != "my-shop" {
		t.Errorf("app = %q", tm.App)
	}
	web, db, cache := tm.Services[0], tm.Services[1], tm.Services[2]
	if !web.HasRepo || web.Image != "" {
		t.Errorf("web image %q has_repo %v", web.Image, web.HasRepo)
	}
	if !reflect.DeepEqual(web.Command, []string{"/docker-entrypoint.sh"}) {
		t.Errorf("web command (from entrypoint) = %q", web.Command)
	}
	if !reflect.DeepEqual(web.Args, []string{"bundle", "exec", "rails", "s", "-b", "0.0.0.0"}) {
		t.Errorf("web args (from command) = %q", web.Args)
	}
	ports := []string{}
	for _, p := range web.Ports {
		s := p.Type + ":" + strconv.Itoa(int(p.Port))
		if p.TargetPort != nil {
			s += "->" + strconv.Itoa(int(*p.TargetPort))
		}
		ports = append(ports, s)
	}
	wantPorts := []string{"node_port:5000->80", "node_port:8443->443", "container_port:9000", "container_port:9100"}
	if !reflect.DeepEqual(ports, wantPorts) {
		t.Errorf("ports = %v, want %v", ports, wantPorts)
	}
	if !reflect.DeepEqual(web.DependsOn, []string{"db", "cache"}) || !reflect.DeepEqual(cache.DependsOn, []string{"db"}) {
		t.Errorf("depends_on = %v / %v", web.DependsOn, cache.DependsOn)
	}
	if web.Memory == nil || web.Memory.Limits != "1Gi" || web.CPU == nil || web.CPU.Limits != "0.5" {
		t.Errorf("web limits = %+v %+v", web.Memory, web.CPU)
	}
	if len(web.ConfigMap) != 1 || web.ConfigMap[0].RepoPath != "config/app.yml" || web.ConfigMap[0].MountPath != "/app/config/app.yml" {
		t.Errorf("web configmap = %+v", web.ConfigMap)
	}
	p := db.ReadinessProbe
	if p == nil || p.Exec == nil || !reflect.DeepEqual(p.Exec.Command, []string{"pg_isready", "-U", "postgres"}) ||
		*p.PeriodSeconds != 10 || *p.TimeoutSeconds != 5 || *p.FailureThreshold != 5 || *p.InitialDelaySeconds != 60 {
		t.Errorf("db readiness probe = %+v", p)
	}
	if db.Memory == nil || db.Memory.Limits != "512Mi" {
		t.Errorf("db memory = %+v", db.Memory)
	}
	if len(db.Volumes) != 1 || db.Volumes[0] != (schema.Volume{Name: "pg-data", Type: "persistent", MountPath: "/var/lib/postgresql/data"}) {
		t.Errorf("db volumes = %+v", db.Volumes)
	}
	wantEnv := map[string][]schema.EnvVar{
		"web": {{Key: "RAILS_ENV", Value: "development"}, {Key: "SECRET_KEY_BASE", Secret: true}},
		"db":  {{Key: "POSTGRES_PASSWORD", Value: "example"}, {Key: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"}},
	}
	if !reflect.DeepEqual(cfg.EnvVars.Services, wantEnv) {
		t.Errorf("env vars = %+v", cfg.EnvVars.Services)
	}
	if !strings.Contains(errs.String(), "SECRET_KEY_BASE has no value") {
		t.Errorf("no note about SECRET_KEY_BASE: %s", errs.String())
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), "services:\n  web:\n    image: nginx\n")
	writeFile(t, filepath.Join(dir, ".release.yaml"), "mine\n")
	err := runInit(&bytes.Buffer{}, &bytes.Buffer{}, dir, initOptions{})
	var ec *exitError
	if !errors.As(err, &ec) || ec.code != exitUsage {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".release.yaml")); string(b) != "mine\n" {
		t.Fatalf(".release.yaml was overwritten: %q", b)
	}
	if err := runInit(&bytes.Buffer{}, &bytes.Buffer{}, dir, initOptions{force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".release.yaml")); string(b) == "mine\n" {
		t.Fatal("--force did not overwrite")
	}
}

func TestInitNoCompose(t *testing.T) {
	err := runInit(&bytes.Buffer{}, &bytes.Buffer{}, t.TempDir(), initOptions{})
	var ec *exitError
	if !errors.As(err, &ec) || ec.code != exitUsage || !strings.Contains(err.Error(), "no compose file") {
		t.Fatalf("err = %v", err)
	}
}

// TestInitComposeFixtures runs init on each of the repository's own compose
// fixtures (testdata/compose/*, written for arbor) and checks that the
// result validates. TestInitCompatComposeFiles (build tag compat) does the
// same over real users' files when they are at hand.
func TestInitComposeFixtures(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "compose", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures in testdata/compose: %v", err)
	}
	for _, src := range dirs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, src, dir)
			initValidates(t, dir, filepath.Join(dir, "docker-compose.yml"))
		})
	}
}

// initValidates runs init on compose in dir, then validates the result strictly.
func initValidates(t *testing.T, dir, compose string) {
	t.Helper()
	var errs bytes.Buffer
	if err := runInit(&bytes.Buffer{}, &errs, dir, initOptions{compose: compose, force: true}); err != nil {
		t.Fatalf("init: %v\n%s", err, errs.String())
	}
	t.Log(errs.String())
	_, findings, err := schema.Load(os.DirFS(dir), schema.DefaultConfigFile, schema.LoadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if findings.HasErrors() {
		t.Errorf("init output does not validate:\n%v", findings)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
