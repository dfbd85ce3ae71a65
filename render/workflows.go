package render

import (
	"fmt"
	"sort"
	"strings"

	"github.com/arbordev/arbor/schema"
)

// Workflow stage names and the task that removes the environment (docs/release-yaml.md#workflows).
const (
	StageSetup        = "setup"
	StagePatch        = "patch"
	StageTeardown     = "teardown"
	TaskRemoveEnv     = "release.remove_environment"
	taskServicesAll   = "services.all"
	taskJobsAll       = "jobs.all"
	stepRemaining     = "remaining-services"
	stepCharts        = "charts"
	stepChartsLeft    = "remaining-charts"
	stepDefaultPatch  = "patch"
	stepDefaultRemove = "remove-environment"
)

// renderWorkflows fills Environment.Workflows: each app's written workflows
// with the defaults for unwritten stages, imported apps' setup and patch
// steps before the importer's.
func (r *renderer) renderWorkflows() error {
	per := make([]map[string]Workflow, len(r.apps))
	for i, a := range r.apps {
		wfs, err := appWorkflows(a)
		if err != nil {
			return err
		}
		per[i] = wfs
	}
	out := per[0]
	for _, stage := range []string{StageSetup, StagePatch, StageTeardown} {
		var steps []Step
		for _, wfs := range per[1:] {
			for _, st := range wfs[stage].Steps {
				if stage == StageTeardown {
					st.Tasks = without(st.Tasks, TaskRemoveEnv)
					if len(st.Tasks) == 0 {
						continue
					}
				}
				steps = append(steps, st)
			}
		}
		wf := out[stage]
		wf.Steps = append(steps, wf.Steps...)
		out[stage] = wf
	}
	r.env.Workflows = out
	return nil
}

func without(tasks []string, drop string) []string {
	out := tasks[:0:0]
	for _, t := range tasks {
		if t != drop {
			out = append(out, t)
		}
	}
	return out
}

// appWorkflows renders one app's workflows.
func appWorkflows(a *app) (map[string]Workflow, error) {
	out := map[string]Workflow{}
	for i, w := range a.t.Workflows {
		if w.Name == "" {
			return nil, fmt.Errorf("workflows[%d]: name is required", i)
		}
		wf, err := writtenWorkflow(a, w)
		if err != nil {
			return nil, fmt.Errorf("workflows.%s: %w", w.Name, err)
		}
		out[w.Name] = wf
	}
	if _, ok := out[StageSetup]; !ok {
		wf, err := defaultSetup(a)
		if err != nil {
			return nil, err
		}
		out[StageSetup] = wf
	}
	if _, ok := out[StagePatch]; !ok {
		out[StagePatch] = defaultPatch(a)
	}
	if _, ok := out[StageTeardown]; !ok {
		out[StageTeardown] = Workflow{Name: StageTeardown, Steps: []Step{{Name: stepDefaultRemove, Tasks: []string{TaskRemoveEnv}, WaitForFinish: true}}}
	}
	if a.imported {
		for name, wf := range out {
			for i := range wf.Steps {
				wf.Steps[i].App = a.name
			}
			out[name] = wf
		}
	}
	return out, nil
}

// writtenWorkflow converts a written workflow: order_from becomes one step per
// task, services.all and jobs.all are expanded, tasks of excluded or static
// services are dropped, and setup gets a final step for unnamed services.
func writtenWorkflow(a *app, w schema.Workflow) (Workflow, error) {
	var steps []Step
	for _, t := range w.OrderFrom {
		steps = append(steps, Step{Name: t, Tasks: []string{t}, WaitForFinish: true})
	}
	for _, s := range w.Parallelize {
		wait := s.WaitForFinish == nil || *s.WaitForFinish
		steps = append(steps, Step{Name: s.Step, Tasks: append([]string(nil), s.Tasks...), WaitForFinish: wait, HaltOnError: s.HaltOnError})
	}
	named := map[string]bool{}
	for i, st := range steps {
		for _, t := range st.Tasks {
			if err := checkTask(a, t); err != nil {
				return Workflow{}, fmt.Errorf("step %s (%d): %w", st.Name, i, err)
			}
			named[t] = true
		}
	}
	var out []Step
	for _, st := range steps {
		var tasks []string
		for _, t := range st.Tasks {
			switch {
			case t == taskServicesAll:
				for _, s := range a.services {
					if !named["services."+s.Name] {
						tasks = append(tasks, "services."+s.Name)
						named["services."+s.Name] = true
					}
				}
			case t == taskJobsAll:
				for _, j := range a.t.Jobs {
					if !named["jobs."+j.Name] {
						tasks = append(tasks, "jobs."+j.Name)
						named["jobs."+j.Name] = true
					}
				}
			case strings.HasPrefix(t, "services.") && !a.deployed(strings.TrimPrefix(t, "services.")):
				// a static or excluded service: nothing to deploy
			case strings.HasPrefix(t, chartTaskPrefix) && !a.hasChart(strings.TrimPrefix(t, chartTaskPrefix)):
				// a chart that was skipped (a git source, or not fetched offline)
			case unusedTask(t):
				// a Release feature arbor accepts without acting on
			default:
				tasks = append(tasks, t)
			}
		}
		if len(tasks) == 0 {
			continue
		}
		st.Tasks = tasks
		out = append(out, st)
	}
	if w.Name == StageSetup {
		var charts []string
		for _, c := range a.charts {
			if !named[chartTaskPrefix+c] {
				charts = append(charts, chartTaskPrefix+c)
			}
		}
		if len(charts) > 0 {
			out = append(out, Step{Name: stepChartsLeft, Tasks: charts, WaitForFinish: true})
		}
		var rest []string
		for _, s := range a.services {
			if !named["services."+s.Name] {
				rest = append(rest, "services."+s.Name)
			}
		}
		if len(rest) > 0 {
			out = append(out, Step{Name: stepRemaining, Tasks: rest, WaitForFinish: true})
		}
	}
	return Workflow{Name: w.Name, Steps: out}, nil
}

func (a *app) deployed(svc string) bool {
	for _, s := range a.services {
		if s.Name == svc {
			return true
		}
	}
	return false
}

// unusedTask reports a task of a Release feature that arbor accepts without
// acting on (charts, infrastructure, builds): validation warns about the
// key, render leaves the task out.
func unusedTask(t string) bool {
	for _, p := range []string{"infrastructure.", "builds."} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// checkTask reports a task that names nothing.
func checkTask(a *app, t string) error {
	switch {
	case t == taskServicesAll || t == taskJobsAll || t == TaskRemoveEnv || unusedTask(t):
		return nil
	case strings.HasPrefix(t, "services."):
		if _, ok := a.byName[strings.TrimPrefix(t, "services.")]; ok {
			return nil
		}
		return fmt.Errorf("task %s: no service has this name", t)
	case strings.HasPrefix(t, chartTaskPrefix):
		n := strings.TrimPrefix(t, chartTaskPrefix)
		for _, c := range a.t.Charts {
			if c.Name == n {
				return nil
			}
		}
		return fmt.Errorf("task %s: no chart has this name", t)
	case strings.HasPrefix(t, "jobs."):
		n := strings.TrimPrefix(t, "jobs.")
		for _, j := range a.t.Jobs {
			if j.Name == n {
				return nil
			}
		}
		return fmt.Errorf("task %s: no job has this name", t)
	}
	return fmt.Errorf("task %s: not services.X, jobs.X, charts.X, services.all, jobs.all or %s", t, TaskRemoveEnv)
}

// defaultSetup deploys services in depends_on layers: layer 0 has no
// dependencies, layer n depends only on earlier layers.
func defaultSetup(a *app) (Workflow, error) {
	deps := map[string][]string{}
	for _, s := range a.services {
		for _, d := range s.DependsOn {
			// A dependency on a service the template does not declare is
			// ignored, as Release does; validation warns about it.
			if a.deployed(d) {
				deps[s.Name] = append(deps[s.Name], d)
			}
		}
	}
	layer := map[string]int{}
	var steps []Step
	// Charts first: services often use what a chart runs (a database, a
	// queue), and a chart's objects wait for readiness like a service's.
	if len(a.charts) > 0 {
		var tasks []string
		for _, c := range a.charts {
			tasks = append(tasks, chartTaskPrefix+c)
		}
		steps = append(steps, Step{Name: stepCharts, Tasks: tasks, WaitForFinish: true})
	}
	remaining := len(a.services)
	for n := 0; remaining > 0; n++ {
		var tasks []string
		for _, s := range a.services {
			if _, done := layer[s.Name]; done {
				continue
			}
			ready := true
			for _, d := range deps[s.Name] {
				if l, ok := layer[d]; !ok || l >= n {
					ready = false
					break
				}
			}
			if ready {
				tasks = append(tasks, "services."+s.Name)
			}
		}
		if len(tasks) == 0 {
			var stuck []string
			for _, s := range a.services {
				if _, done := layer[s.Name]; !done {
					stuck = append(stuck, s.Name)
				}
			}
			sort.Strings(stuck)
			return Workflow{}, fmt.Errorf("depends_on: cycle among services %s", strings.Join(stuck, ", "))
		}
		for _, t := range tasks {
			layer[strings.TrimPrefix(t, "services.")] = n
		}
		remaining -= len(tasks)
		steps = append(steps, Step{Name: fmt.Sprintf("layer-%d", n), Tasks: tasks, WaitForFinish: true})
	}
	return Workflow{Name: StageSetup, Steps: steps}, nil
}

// defaultPatch updates the repo-built services, or every service when none is.
func defaultPatch(a *app) Workflow {
	var built, all []string
	for _, s := range a.services {
		all = append(all, "services."+s.Name)
		if s.HasRepo || s.Build != nil {
			built = append(built, "services."+s.Name)
		}
	}
	tasks := built
	if len(tasks) == 0 {
		tasks = all
	}
	// A chart's values may carry the commit (image tags): patch renders it again.
	for _, c := range a.charts {
		tasks = append(tasks, chartTaskPrefix+c)
	}
	wf := Workflow{Name: StagePatch}
	if len(tasks) > 0 {
		wf.Steps = []Step{{Name: stepDefaultPatch, Tasks: tasks, WaitForFinish: true}}
	}
	return wf
}
