package workflow

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// BenchmarkSetup10Services measures, on the local cluster, a fresh
// environment of ten independent services brought up by the executor's
// default setup (one step, the services in parallel, each waited for) and,
// as the baseline in the same run, by one Apply and one Wait of every
// object. It reports ms per environment for both and their ratio.
func BenchmarkSetup10Services(b *testing.B) {
	var sb strings.Builder
	for i := range 10 {
		fmt.Fprintf(&sb, "- name: s%d\n  image: s:1\n  ports: [{type: container_port, port: 80}]\n", i)
	}
	tmpl := "services:\n" + sb.String()
	ctx := context.Background()
	var exec, base time.Duration
	for i := 0; i < b.N; i++ {
		h := newBenchHarness(b)
		env := h.renderB(b, "main", "c1", tmpl)
		start := time.Now()
		if _, err := h.eng.Apply(ctx, env.Objects, apply.ApplyOptions{Namespace: env.Namespace}); err != nil {
			b.Fatal(err)
		}
		if err := h.eng.Wait(ctx, env.Objects, apply.WaitOptions{Namespace: env.Namespace, Timeout: time.Minute}); err != nil {
			b.Fatal(err)
		}
		base += time.Since(start)

		env2 := h.renderB(b, "feature", "c1", tmpl)
		start = time.Now()
		if _, err := h.x.Run(ctx, Run{Env: env2, Stage: render.StageSetup}); err != nil {
			b.Fatal(err)
		}
		exec += time.Since(start)
	}
	b.ReportMetric(float64(exec.Milliseconds())/float64(b.N), "executor-ms/env")
	b.ReportMetric(float64(base.Milliseconds())/float64(b.N), "apply+wait-ms/env")
	b.ReportMetric(float64(exec)/float64(base), "ratio")
}
