package schema

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/arbordev/arbor/internal/repofs"
)

// checker runs the semantic checks of docs/release-yaml.md#validation over a decoded configuration.
type checker struct {
	cfg  *Config
	fsys fs.FS
	opts LoadOptions
	out  Findings

	services map[string]*Service
	jobs     map[string]bool
	imports  bool   // names may also come from imported apps
	external string // "charts" or "infrastructure" when the template has them
}

// check returns the semantic findings of cfg. Positions come from cfg.
func check(cfg *Config, fsys fs.FS, opts LoadOptions) Findings {
	c := &checker{cfg: cfg, fsys: fsys, opts: opts, services: map[string]*Service{}, jobs: map[string]bool{}}
	t := cfg.Template
	c.imports = len(t.AppImports) > 0
	c.external = externalKeys(cfg)
	for i := range t.Services {
		c.services[t.Services[i].Name] = &t.Services[i]
	}
	for _, j := range t.Jobs {
		c.jobs[j.Name] = true
	}
	c.names()
	c.app()
	for i := range t.Services {
		c.service(i, &t.Services[i])
	}
	c.dependsOnCycles()
	for i := range t.Jobs {
		c.job(fmt.Sprintf("jobs[%d]", i), &t.Jobs[i])
	}
	for i := range t.CronJobs {
		f := fmt.Sprintf("cron_jobs[%d]", i)
		c.job(f, &t.CronJobs[i].Job)
		c.schedule(f+".schedule", t.CronJobs[i].Schedule)
	}
	c.workflows()
	c.hostnames("hostnames", t.Hostnames)
	c.rules()
	c.resources("resources", t.Resources)
	c.environmentTemplates()
	c.branchPatterns()
	c.sharedVolumes()
	c.kustomize()
	c.charts()
	c.checkBuilds(t)
	c.parameters()
	c.envVars()
	return c.out
}

func (c *checker) errorf(field, format string, args ...any) {
	c.out = append(c.out, Finding{Position: c.cfg.Position(field), Field: c.display(field),
		Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(field, format string, args ...any) {
	c.out = append(c.out, Finding{Position: c.cfg.Position(field), Field: c.display(field),
		Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
}

// display is the field path as a finding shows it: relative to the file it is in.
func (c *checker) display(field string) string {
	if c.cfg.EnvVarsFile != "" && strings.HasPrefix(field, envPrefix+".") {
		return strings.TrimPrefix(field, envPrefix+".")
	}
	return field
}

// unresolved reports a reference to a name not declared here: an error, or a
// warning when app imports may declare it.
func (c *checker) unresolved(field, what, name string) {
	if c.imports {
		c.warnf(field, "no %s named %q in this template; it must come from an imported app", what, name)
		return
	}
	c.errorf(field, "no %s named %q", what, name)
}

// routeTarget reports a hostname or rule naming an undeclared service. With
// charts, it may be a Service a chart renders: render checks that (an error
// when no chart renders it), so nothing is said here. With infrastructure,
// the service may be one of its own, which arbor does not deploy: a warning.
func (c *checker) routeTarget(field, name string) {
	if len(c.cfg.Template.Charts) > 0 && !c.imports {
		return
	}
	if c.external != "" && !c.imports {
		c.warnf(field, "no service named %q; it may come from %s, which arbor does not deploy", name, c.external)
		return
	}
	c.unresolved(field, "service", name)
}

// --- names ---

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// dnsLabel checks that name can name Kubernetes objects.
func (c *checker) dnsLabel(field, what, name string) {
	if name == "" {
		c.errorf(field, "%s name is empty", what)
		return
	}
	if len(name) > 63 || !dnsLabelRE.MatchString(name) {
		c.errorf(field, "%s name %q is not a DNS label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)", what, name)
	}
}

// objectName checks a service, job or cron job name: Release accepts upper
// case and "_", so the name is checked in the form its objects take
// (ObjectName).
func (c *checker) objectName(field, what, name string) {
	if name == "" {
		c.errorf(field, "%s name is empty", what)
		return
	}
	if o := ObjectName(name); len(o) > 63 || !dnsLabelRE.MatchString(o) {
		c.errorf(field, "%s name %q cannot name Kubernetes objects: lower-cased and with '_' as '-' (%q) it must be a DNS label (letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)", what, name, o)
	}
}

// sameObjectName reports names of one list that differ but derive the same
// object name (web_api and web-api), which would overwrite each other.
func (c *checker) sameObjectName(list, what string, names []string) {
	first := map[string]int{}
	for i, n := range names {
		o := ObjectName(n)
		if n == "" {
			continue
		}
		if j, seen := first[o]; seen && names[j] != n {
			c.errorf(fmt.Sprintf("%s[%d].name", list, i), "%s name %q gives the same object name %q as %s[%d] %q", what, n, o, list, j, names[j])
			continue
		}
		if _, seen := first[o]; !seen {
			first[o] = i
		}
	}
}

// unique reports the second and later uses of each name in a list.
func (c *checker) unique(list string, what string, names []string) {
	first := map[string]int{}
	for i, n := range names {
		if n == "" {
			continue
		}
		if j, dup := first[n]; dup {
			c.errorf(fmt.Sprintf("%s[%d].name", list, i), "duplicate %s name %q (also %s[%d])", what, n, list, j)
			continue
		}
		first[n] = i
	}
}

func (c *checker) names() {
	t := c.cfg.Template
	svc := namesOf(t.Services, func(s Service) string { return s.Name })
	job := namesOf(t.Jobs, func(j Job) string { return j.Name })
	cron := namesOf(t.CronJobs, func(j CronJob) string { return j.Name })
	wf := namesOf(t.Workflows, func(w Workflow) string { return w.Name })
	et := namesOf(t.EnvironmentTemplates, func(e EnvironmentTemplate) string { return e.Name })
	sv := namesOf(t.SharedVolumes, func(v SharedVolume) string { return v.Name })
	sa := namesOf(t.ServiceAccounts, func(a ServiceAccount) string { return a.Name })
	par := namesOf(t.Parameters, func(p Parameter) string { return p.Name })
	imp := namesOf(t.AppImports, func(a AppImport) string { return a.Name })
	c.unique("services", "service", svc)
	c.unique("jobs", "job", job)
	c.unique("cron_jobs", "cron job", cron)
	c.unique("workflows", "workflow", wf)
	c.unique("environment_templates", "environment template", et)
	c.unique("shared_volumes", "shared volume", sv)
	c.unique("service_accounts", "service account", sa)
	c.unique("parameters", "parameter", par)
	c.unique("app_imports", "app import", imp)
	c.sameObjectName("services", "service", svc)
	c.sameObjectName("jobs", "job", job)
	c.sameObjectName("cron_jobs", "cron job", cron)
	for i, n := range sv {
		c.dnsLabel(fmt.Sprintf("shared_volumes[%d].name", i), "shared volume", n)
	}
	for i, n := range sa {
		c.dnsLabel(fmt.Sprintf("service_accounts[%d].name", i), "service account", n)
	}
	for i, n := range imp {
		c.dnsLabel(fmt.Sprintf("app_imports[%d].name", i), "app", n)
	}
}

func (c *checker) app() {
	if c.cfg.Template.App != "" {
		c.dnsLabel("app", "app", c.cfg.Template.App)
	}
}

// --- services ---

func (c *checker) service(i int, s *Service) {
	f := fmt.Sprintf("services[%d]", i)
	c.objectName(f+".name", "service", s.Name)
	c.serviceImage(f, s)
	for j, d := range s.DependsOn {
		if _, ok := c.services[d]; ok {
			continue
		}
		df := fmt.Sprintf("%s.depends_on[%d]", f, j)
		if c.imports {
			c.unresolved(df, "service", d)
			continue
		}
		// Release ignores such a dependency; so does arbor, saying so.
		c.warnf(df, "no service named %q; this dependency is ignored", d)
	}
	c.ports(f+".ports", s.Ports)
	c.probe(f+".readiness_probe", s.ReadinessProbe)
	c.probe(f+".liveness_probe", s.LivenessProbe)
	c.quantities(f+".cpu", s.CPU)
	c.quantities(f+".memory", s.Memory)
	c.volumes(f, s)
	if s.Storage != nil {
		c.quantity(f+".storage.size", s.Storage.Size)
	}
	c.configMaps(f, s)
	c.containers(f+".init", s.Init, true)
	c.containers(f+".sidecars", s.Sidecars, false)
	c.autoscale(f+".autoscale", s.Autoscale)
	c.serviceAccount(f+".service_account_name", s.ServiceAccountName)
	c.envs(f+".envs", s.Envs)
}

func (c *checker) serviceImage(f string, s *Service) {
	if s.Image != "" || s.Static {
		return
	}
	if s.HasRepo || s.Build != nil {
		c.warnf(f+".name", "service %q has no image: its image is named <app>/%s under the daemon's image registry", s.Name, ObjectName(s.Name))
		return
	}
	c.errorf(f+".name", "service %q has no image", s.Name)
}

func (c *checker) ports(f string, ports []Port) {
	for j, p := range ports {
		pf := fmt.Sprintf("%s[%d]", f, j)
		c.portNumber(pf+".port", int(p.Port))
		if p.TargetPort != nil {
			c.portNumber(pf+".target_port", int(*p.TargetPort))
		}
	}
}

func (c *checker) portNumber(f string, n int) {
	if n < 1 || n > 65535 {
		c.errorf(f, "port %d is out of range 1-65535", n)
	}
}

func (c *checker) probe(f string, p *Probe) {
	if p == nil {
		return
	}
	actions := 0
	if p.Exec != nil {
		actions++
		if len(p.Exec.Command) == 0 {
			c.errorf(f+".exec.command", "the probe command is empty")
		}
	}
	if p.HTTPGet != nil {
		actions++
		c.portNumber(f+".http_get.port", int(p.HTTPGet.Port))
	}
	if p.TCPSocket != nil {
		actions++
		c.portNumber(f+".tcp_socket.port", int(p.TCPSocket.Port))
	}
	if actions != 1 {
		c.errorf(f, "a probe needs exactly one of exec, http_get and tcp_socket (found %d)", actions)
	}
}

func (c *checker) volumes(f string, s *Service) {
	names := map[string]bool{}
	for j, v := range s.Volumes {
		vf := fmt.Sprintf("%s.volumes[%d]", f, j)
		switch {
		case v.Claim != "":
			if !c.hasSharedVolume(v.Claim) {
				c.errorf(vf+".claim", "no shared volume named %q in shared_volumes", v.Claim)
			}
		case v.Name == "":
			c.errorf(vf, "a volume needs a name (or a claim naming a shared volume)")
		default:
			// Release allows names like db_data: render makes them DNS labels.
			if names[v.Name] {
				c.errorf(vf+".name", "duplicate volume name %q in service %q", v.Name, s.Name)
			}
			names[v.Name] = true
		}
		c.quantity(vf+".size", v.Size)
		if v.MountPath != "" && !strings.HasPrefix(v.MountPath, "/") {
			c.errorf(vf+".mount_path", "mount_path %q must be an absolute path", v.MountPath)
		}
	}
}

func (c *checker) hasSharedVolume(name string) bool {
	for _, v := range c.cfg.Template.SharedVolumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

func (c *checker) configMaps(f string, s *Service) {
	for j, cm := range s.ConfigMap {
		cf := fmt.Sprintf("%s.configmap[%d]", f, j)
		if cm.Name != "" {
			c.dnsLabel(cf+".name", "configmap", cm.Name)
		}
		c.repoPath(cf+".repo_path", cm.RepoPath, false)
	}
}

// repoPath checks that a path in the branch's tree exists and stays inside it.
func (c *checker) repoPath(f, p string, wantDir bool) {
	if p == "" {
		return
	}
	clean := path.Clean(strings.TrimPrefix(p, "./"))
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		c.errorf(f, "path %q must be relative to the repository root and stay inside it", p)
		return
	}
	if c.fsys == nil {
		return
	}
	info, err := fs.Stat(c.fsys, clean)
	switch {
	case repofs.Refused(err):
		c.errorf(f, "%s", pathReason(err))
	case err != nil:
		c.errorf(f, "%s does not exist in the repository", clean)
	case !info.IsDir() && !info.Mode().IsRegular():
		c.errorf(f, "%s: %v", clean, &repofs.TypeError{Mode: info.Mode()})
	case wantDir && !info.IsDir():
		c.errorf(f, "%s is not a directory", clean)
	}
}

func (c *checker) containers(f string, list []Container, init bool) {
	names := map[string]bool{}
	for j, ct := range list {
		cf := fmt.Sprintf("%s[%d]", f, j)
		c.dnsLabel(cf+".name", "container", ct.Name)
		if names[ct.Name] {
			c.errorf(cf+".name", "duplicate container name %q", ct.Name)
		}
		names[ct.Name] = true
		switch {
		case ct.FromServices != "":
			if !init {
				c.errorf(cf+".from_services", "sidecars take an image, not from_services")
			} else if _, ok := c.services[ct.FromServices]; !ok {
				c.unresolved(cf+".from_services", "service", ct.FromServices)
			}
		case ct.Image == "":
			c.errorf(cf+".name", "container %q has no image", ct.Name)
		}
		c.ports(cf+".ports", ct.Ports)
		c.envs(cf+".envs", ct.Envs)
	}
}

func (c *checker) autoscale(f string, a *Autoscale) {
	if a == nil {
		return
	}
	if a.MaxReplicas < 1 {
		c.errorf(f+".max_replicas", "max_replicas must be at least 1")
	}
	if a.MinReplicas != nil && (*a.MinReplicas < 1 || *a.MinReplicas > a.MaxReplicas) {
		c.errorf(f+".min_replicas", "min_replicas must be between 1 and max_replicas (%d)", a.MaxReplicas)
	}
	for j, m := range a.Metrics {
		mf := fmt.Sprintf("%s.metrics[%d]", f, j)
		if m.AverageValue != "" {
			c.quantity(mf+".resource.average_value", m.AverageValue)
		} else if m.Target < 1 {
			c.errorf(mf, "a metric needs a target utilization (percent) or an average_value")
		}
	}
}

// serviceAccount checks a pod's service account. One not declared in
// service_accounts is a warning, not an error: a kustomize directory or the
// cluster's operators may provide it.
func (c *checker) serviceAccount(f, name string) {
	if name == "" {
		return
	}
	for _, sa := range c.cfg.Template.ServiceAccounts {
		if sa.Name == name {
			return
		}
	}
	c.warnf(f, "service account %q is not declared in service_accounts; it must already exist in the environment's namespace", name)
}

// --- depends_on cycles ---

func (c *checker) dependsOnCycles() {
	t := c.cfg.Template
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	index := map[string]int{}
	for i, s := range t.Services {
		if _, ok := index[s.Name]; !ok {
			index[s.Name] = i
		}
	}
	reported := map[string]bool{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		for _, d := range c.services[name].DependsOn {
			if _, ok := c.services[d]; !ok {
				continue
			}
			switch state[d] {
			case unvisited:
				visit(d)
			case active:
				c.reportCycle(stack, d, index, reported)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, s := range t.Services {
		if state[s.Name] == unvisited && c.services[s.Name] != nil {
			visit(s.Name)
		}
	}
}

func (c *checker) reportCycle(stack []string, to string, index map[string]int, reported map[string]bool) {
	start := len(stack) - 1
	for start >= 0 && stack[start] != to {
		start--
	}
	cycle := append(append([]string{}, stack[start:]...), to)
	members := append([]string{}, cycle[:len(cycle)-1]...)
	sort.Strings(members)
	key := strings.Join(members, ",")
	if reported[key] {
		return
	}
	reported[key] = true
	from := stack[len(stack)-1]
	s := c.services[from]
	j := 0
	for k, d := range s.DependsOn {
		if d == to {
			j = k
			break
		}
	}
	c.errorf(fmt.Sprintf("services[%d].depends_on[%d]", index[from], j), "depends_on cycle: %s", strings.Join(cycle, " → "))
}

// --- jobs ---

func (c *checker) job(f string, j *Job) {
	c.objectName(f+".name", "job", j.Name)
	switch {
	case j.FromServices != "":
		if _, ok := c.services[j.FromServices]; !ok {
			c.unresolved(f+".from_services", "service", j.FromServices)
		}
		if j.Image != "" {
			c.warnf(f+".image", "image is ignored: from_services %q gives the image", j.FromServices)
		}
	case j.Image == "":
		c.errorf(f+".name", "job %q has neither image nor from_services", j.Name)
	}
	c.quantities(f+".cpu", j.CPU)
	c.quantities(f+".memory", j.Memory)
	if j.CompletedTimeout != nil && *j.CompletedTimeout < 1 {
		c.errorf(f+".completed_timeout", "completed_timeout must be a positive number of seconds")
	}
	if j.BackoffLimit != nil && *j.BackoffLimit < 0 {
		c.errorf(f+".backoff_limit", "backoff_limit must not be negative")
	}
	c.serviceAccount(f+".service_account_name", j.ServiceAccountName)
	c.envs(f+".envs", j.Envs)
	for _, k := range sortedLabelKeys(j.Labels) {
		if err := CheckJobLabel(k, j.Labels[k]); err != nil {
			c.errorf(f+".labels."+k, "%v", err)
		}
	}
}

var cronMacros = map[string]bool{"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true, "@daily": true, "@midnight": true, "@hourly": true}

var cronFieldRE = regexp.MustCompile(`^[0-9A-Za-z*?/,\-]+$`)

// schedule checks a cron schedule: five fields, or one of the @ macros
// Kubernetes accepts.
func (c *checker) schedule(f, s string) {
	s = strings.TrimSpace(s)
	if cronMacros[s] {
		return
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		c.errorf(f, "schedule %q must have 5 fields (minute hour day-of-month month day-of-week) or be an @ macro such as @daily", s)
		return
	}
	for _, fl := range fields {
		if !cronFieldRE.MatchString(fl) {
			c.errorf(f, "schedule field %q is not valid cron syntax", fl)
			return
		}
	}
}

// --- workflows ---

func (c *checker) workflows() {
	for i, w := range c.cfg.Template.Workflows {
		f := fmt.Sprintf("workflows[%d]", i)
		switch {
		case len(w.Parallelize) > 0 && len(w.OrderFrom) > 0:
			c.errorf(f, "workflow %q has both parallelize and order_from; use one", w.Name)
		case len(w.Parallelize) == 0 && len(w.OrderFrom) == 0:
			c.errorf(f, "workflow %q has no tasks (parallelize or order_from)", w.Name)
		}
		for j, st := range w.Parallelize {
			for k, task := range st.Tasks {
				c.task(fmt.Sprintf("%s.parallelize[%d].tasks[%d]", f, j, k), task)
			}
		}
		for k, task := range w.OrderFrom {
			c.task(fmt.Sprintf("%s.order_from[%d]", f, k), task)
		}
	}
}

func (c *checker) task(f, task string) {
	kind, name, ok := strings.Cut(task, ".")
	switch {
	case task == "services.all", task == "jobs.all", task == "release.remove_environment":
	case ok && kind == "services":
		if _, found := c.services[name]; !found {
			c.unresolved(f, "service", name)
		}
	case ok && kind == "jobs":
		if !c.jobs[name] {
			c.unresolved(f, "job", name)
		}
	case ok && kind == "charts":
		if !c.hasChart(name) {
			c.unresolved(f, "chart", name)
		}
	case ok && kind == "infrastructure":
		c.warnf(f, "task %q is skipped: arbor does not act on %s", task, kind)
	default:
		c.errorf(f, "unknown task %q (want services.NAME, services.all, jobs.NAME, jobs.all, charts.NAME or release.remove_environment)", task)
	}
}

// --- hostnames and rules ---

var hostVars = map[string]bool{"env_id": true, "domain": true, "app": true, "branch": true, "service": true}

func (c *checker) hostnames(f string, hs []map[string]string) {
	for i, h := range hs {
		for _, svc := range sortedStringKeys(h) {
			hf := fmt.Sprintf("%s[%d].%s", f, i, svc)
			if s, ok := c.services[svc]; !ok {
				c.routeTarget(hf, svc)
			} else if len(s.Ports) == 0 {
				c.warnf(hf, "service %q has no ports: it gets no hostname (the entry is ignored)", svc)
			}
			c.hostPattern(hf, h[svc])
		}
	}
}

// hostPattern checks the variables a hostname pattern uses (docs/release-yaml.md#hostnames-and-routing).
func (c *checker) hostPattern(f, p string) {
	for _, ref := range references(p) {
		if ref.err != "" || strings.HasPrefix(ref.name, "parameters.") {
			continue // reported by the reference checks
		}
		if !hostVars[ref.name] {
			c.errorf(f, "hostname pattern uses ${%s}; known variables are ${env_id}, ${domain}, ${app}, ${branch}, ${service} and ${parameters.NAME}", ref.name)
		}
	}
}

func (c *checker) rules() {
	for i, r := range c.cfg.Template.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		s, ok := c.services[r.Service]
		if !ok {
			c.routeTarget(f+".service", r.Service)
		} else if !hasNodePort(s) {
			c.errorf(f+".service", "service %q has no node_port port to route to", r.Service)
		}
		for j, h := range r.Hostnames {
			c.hostPattern(fmt.Sprintf("%s.hostnames[%d]", f, j), h)
		}
		if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
			c.errorf(f+".path", "path %q must start with /", r.Path)
		}
	}
}

func hasNodePort(s *Service) bool {
	for _, p := range s.Ports {
		if p.Type == "node_port" {
			return true
		}
	}
	return false
}

// --- quantities and durations ---

func (c *checker) resources(f string, r *Resources) {
	if r == nil {
		return
	}
	c.quantities(f+".cpu", r.CPU)
	c.quantities(f+".memory", r.Memory)
}

func (c *checker) quantities(f string, q *Quantities) {
	if q == nil {
		return
	}
	c.quantity(f+".limits", q.Limits)
	c.quantity(f+".requests", q.Requests)
}

// quantity checks a Kubernetes quantity; values with ${...} are checked after interpolation, at render.
func (c *checker) quantity(f string, q Scalar) {
	s := strings.TrimSpace(string(q))
	if s == "" || strings.Contains(s, "${") {
		return
	}
	if _, err := resource.ParseQuantity(s); err != nil {
		c.errorf(f, "%q is not a Kubernetes quantity (such as 500m, 1, 512Mi, 2Gi)", s)
	}
}

func (c *checker) environmentTemplates() {
	for i, e := range c.cfg.Template.EnvironmentTemplates {
		f := fmt.Sprintf("environment_templates[%d]", i)
		c.resources(f+".resources", e.Resources)
		c.hostnames(f+".hostnames", e.Hostnames)
		if e.ExpiresAfter != "" {
			if d, err := ParseDuration(e.ExpiresAfter); err != nil {
				c.errorf(f+".expires_after", "%v", err)
			} else if d <= 0 {
				c.errorf(f+".expires_after", "expires_after must be positive")
			}
		}
		var names []string
		for j, p := range e.Parameters {
			names = append(names, p.Name)
			if !c.declaredParameter(p.Name) {
				c.warnf(fmt.Sprintf("%s.parameters[%d].name", f, j), "parameter %q is not declared in the top-level parameters", p.Name)
			}
		}
		c.unique(f+".parameters", "parameter", names)
	}
}

// branchPatterns reports the patterns that do not compile (they match no branch).
func (c *checker) branchPatterns() {
	t := c.cfg.Template
	if t.Branches != nil {
		c.globs("branches.include", t.Branches.Include)
		c.globs("branches.exclude", t.Branches.Exclude)
	}
	for i, e := range t.EnvironmentTemplates {
		c.globs(fmt.Sprintf("environment_templates[%d].branches", i), e.Branches)
	}
}

func (c *checker) globs(field string, gs Globs) {
	for i, g := range gs {
		if err := g.Err(); err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
}

func (c *checker) sharedVolumes() {
	for i, v := range c.cfg.Template.SharedVolumes {
		c.quantity(fmt.Sprintf("shared_volumes[%d].size", i), v.Size)
	}
}

func (c *checker) kustomize() {
	for i, k := range c.cfg.Template.Kustomize {
		c.repoPath(fmt.Sprintf("kustomize[%d].path", i), k.Path, true)
	}
}

// --- parameters and ${...} references ---

func (c *checker) declaredParameter(name string) bool {
	for _, p := range c.cfg.Template.Parameters {
		if p.Name == name {
			return true
		}
	}
	return false
}

// parameters checks that required parameters have a value and that every
// ${parameters.x} names a declared parameter.
func (c *checker) parameters() {
	for i, p := range c.cfg.Template.Parameters {
		if p.Default != "" || p.Optional || c.hasEnvTemplateValue(p.Name) {
			continue
		}
		if _, ok := c.opts.Parameters[p.Name]; !ok {
			c.errorf(fmt.Sprintf("parameters[%d].name", i), "required parameter %q has no value: give it a default, mark it optional, or set it in the daemon config (--param %s=VALUE)", p.Name, p.Name)
		}
	}
	c.walkStrings(c.cfg.Template, "")
	c.walkEnvStrings()
}

// hasEnvTemplateValue reports whether every environment template gives the parameter a default.
func (c *checker) hasEnvTemplateValue(name string) bool {
	ets := c.cfg.Template.EnvironmentTemplates
	if len(ets) == 0 {
		return false
	}
	for _, e := range ets {
		found := false
		for _, p := range e.Parameters {
			if p.Name == name && p.Default != "" {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// walkStrings checks the ${...} references in every string of the template.
func (c *checker) walkStrings(t *Template, _ string) {
	eachString(t, "", func(field, s string) { c.refs(field, s) })
}

func (c *checker) walkEnvStrings() {
	e := c.cfg.EnvVars
	for i, v := range e.Defaults {
		c.refs(fmt.Sprintf("%s.defaults[%d].value", envPrefix, i), string(v.Value))
	}
	for _, svc := range sortedEnvKeys(e.Services) {
		for i, v := range e.Services[svc] {
			c.refs(fmt.Sprintf("%s.services.%s[%d].value", envPrefix, svc, i), string(v.Value))
		}
	}
	for _, k := range e.MappingOrder {
		c.refs(fmt.Sprintf("%s.mapping.%s", envPrefix, k), e.Mapping[k])
	}
}

func (c *checker) refs(field, s string) {
	for _, r := range references(s) {
		switch {
		case r.err != "":
			c.errorf(field, "%s", r.err)
		case strings.HasPrefix(r.name, "parameters."):
			name := strings.TrimPrefix(r.name, "parameters.")
			if !c.declaredParameter(name) {
				c.errorf(field, "${%s} names no declared parameter", r.name)
			}
		}
	}
}

// reference is one ${...} in a string; err says why it is malformed.
type reference struct {
	name, fallback string
	err            string
}

var refNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// references finds the ${NAME} and ${NAME:-fallback} references in s. "$$"
// escapes a dollar sign.
func references(s string) []reference {
	var out []reference
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if s[i+1] != '{' {
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			out = append(out, reference{err: fmt.Sprintf("unterminated ${ at offset %d", i)})
			return out
		}
		body := s[i+2 : i+2+end]
		name, fallback, _ := strings.Cut(body, ":-")
		r := reference{name: name, fallback: fallback}
		if !refNameRE.MatchString(name) {
			r.err = fmt.Sprintf("${%s} is not a valid variable reference", body)
		}
		out = append(out, r)
		i += 2 + end
	}
	return out
}

// --- environment variables ---

func (c *checker) envs(f string, list []EnvVar) {
	keys := map[string]bool{}
	for i, v := range list {
		vf := fmt.Sprintf("%s[%d]", f, i)
		if strings.Contains(v.Key, "=") {
			c.errorf(vf+".key", "variable name %q must not contain '='", v.Key)
		}
		if keys[v.Key] {
			c.warnf(vf+".key", "variable %q is set twice; the last value wins", v.Key)
		}
		keys[v.Key] = true
		if v.Secret && v.Value != "" {
			c.warnf(vf+".value", "secret variable %q has its value committed in git; set secret: true without a value and keep the value in the cluster", v.Key)
		}
	}
}

func (c *checker) envVars() {
	e := c.cfg.EnvVars
	c.envs(envPrefix+".defaults", e.Defaults)
	for _, svc := range sortedEnvKeys(e.Services) {
		f := envPrefix + ".services." + svc
		c.envs(f, e.Services[svc])
		if _, ok := c.services[svc]; !ok && !c.jobs[svc] && !c.imports {
			c.warnf(f, "no service or job named %q; these variables are not used", svc)
		}
	}
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedEnvKeys(m map[string][]EnvVar) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HasExternalServices reports whether the template has keys arbor accepts but
// does not act on that may deploy services of their own (charts,
// infrastructure). References to unknown services are then warnings, and
// render leaves out the hosts and rules that name them.
func (c *Config) HasExternalServices() bool { return externalKeys(c) != "" }

// namesOf lists the names of a template section's entries, in file order.
func namesOf[T any](xs []T, name func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

// externalKeys names the accepted-but-unused keys that may deploy services
// of their own, as written in the template ("" when there are none).
func externalKeys(cfg *Config) string {
	var keys []string
	for _, k := range []string{"charts", "infrastructure"} {
		if _, ok := cfg.positions[k]; ok && cfg.Form != FormCompose {
			keys = append(keys, k)
		}
	}
	return strings.Join(keys, " or ")
}

// reservedLabels are the label keys arbor sets itself; a job's labels (ext)
// may not override them, or arbor would lose track of its own objects.
var reservedLabels = map[string]bool{
	"app.kubernetes.io/managed-by": true, "arbor.dev/app": true, "arbor.dev/env": true,
	"arbor.dev/job": true, "arbor.dev/service": true, "arbor.dev/imported-from": true,
}

// CheckJobLabel reports a job label (ext) that Kubernetes would refuse or
// that would override one of arbor's own labels.
func CheckJobLabel(key, value string) error {
	if reservedLabels[key] {
		return fmt.Errorf("label %s is set by arbor and cannot be overridden", key)
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return fmt.Errorf("label %s value %q: %s", key, value, strings.Join(errs, "; "))
	}
	return nil
}

func sortedLabelKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
