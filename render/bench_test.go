package render

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// bench20Template is a 20-service template: ports, probes, resources, envs,
// depends_on, hostnames for a few, and a migration job. No kustomize.
func bench20Template() (string, string) {
	var b strings.Builder
	b.WriteString("app: bench\nresources: {cpu: {limits: 1000m, requests: 100m}, memory: {limits: 1Gi, requests: 128Mi}, replicas: 1}\nservices:\n")
	for i := 0; i < 20; i++ {
		kind := "container_port"
		if i%4 == 0 {
			kind = "node_port"
		}
		fmt.Fprintf(&b, `- name: svc-%02d
  image: example.com/acme/svc-%02d
  has_repo: true
  command: [/app/run]
  args: [--port, "8080"]
  ports:
  - {type: %s, port: 8080, target_port: 8080}
  readiness_probe: {http_get: {path: /ready, port: 8080}, period_seconds: 5, failure_threshold: 3}
  liveness_probe: {tcp_socket: {port: 8080}, initial_delay_seconds: 10}
  envs:
  - {key: SERVICE_INDEX, value: "%d"}
  - {key: FEATURE_FLAGS, value: "a,b,c"}
`, i, i, kind, i)
		if i > 0 {
			fmt.Fprintf(&b, "  depends_on: [svc-%02d]\n", (i-1)/4*4)
		}
	}
	b.WriteString("jobs:\n- name: migrate\n  from_services: svc-00\n  command: [/app/migrate]\n")
	env := `defaults:
- {key: LOG_LEVEL, value: info}
- {key: DB_HOST, value: db}
- {key: DB_USER, value: app}
- {key: DB_PASSWORD, value: hunter2, secret: true}
services:
  svc-01:
  - {key: EXTRA, value: "1"}
mapping:
  DB_URL: "postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}/app"
  API_URL: SVC_00_INGRESS_URL
`
	return b.String(), env
}

// BenchmarkRender20Services renders one environment of a 20-service template.
// The machine is shared, so it also times a baseline in the same loop —
// encoding the rendered objects as JSON, as they go to the API server — and
// reports render time as a multiple of it (x-json-encode), which contention
// affects far less than ns/op.
func BenchmarkRender20Services(b *testing.B) {
	tmpl, env := bench20Template()
	in := Input{
		Config:  configFrom(b, tmpl, env),
		Context: Context{App: "bench", Branch: "feature/bench", Commit: "0123456789abcdef0123456789abcdef01234567", Domain: "preview.example.com"},
	}
	// The loader hashes the files once when it reads them (schema.Config.Hash);
	// a configuration built by hand is hashed by Render on every call instead.
	in.Config.Hash = configContentHash(in.Config)
	if _, err := Render(in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var renderTime, baseTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		env, err := Render(in)
		renderTime += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(env.Objects) < 60 {
			b.Fatalf("only %d objects", len(env.Objects))
		}
		b.StopTimer()
		start = time.Now()
		for _, o := range env.Objects {
			if _, err := json.Marshal(o.Object); err != nil {
				b.Fatal(err)
			}
		}
		baseTime += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(baseTime.Nanoseconds())/float64(b.N), "json-encode-ns/op")
	b.ReportMetric(float64(renderTime)/float64(baseTime), "x-json-encode")
}
