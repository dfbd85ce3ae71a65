package render

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/arbordev/arbor/schema"
)

// defaultStorageSize is the size of a persistent volume with no size given.
const defaultStorageSize = "1Gi"

// podParts are the pieces of a service's pod that jobs with from_services copy.
type podParts struct {
	image        string
	volumes      []any
	mounts       []any
	env          envSet
	nodeSelector map[string]any
	sa           string
	cpu, memory  *schema.Quantities
}

// renderApps renders every app's service accounts, shared volumes, services,
// jobs and cron jobs.
func (r *renderer) renderApps() error {
	for _, a := range r.apps {
		parts := map[string]*podParts{}
		if err := r.renderServiceAccounts(a); err != nil {
			return err
		}
		if err := r.renderSharedVolumes(a); err != nil {
			return err
		}
		for _, s := range a.services {
			p, err := r.renderService(a, s)
			if err != nil {
				return fmt.Errorf("services.%s: %w", s.Name, err)
			}
			parts[s.Name] = p
		}
		for i := range a.t.Jobs {
			j := &a.t.Jobs[i]
			if err := r.renderJob(a, j, parts); err != nil {
				return fmt.Errorf("jobs.%s: %w", j.Name, err)
			}
		}
		for i := range a.t.CronJobs {
			j := &a.t.CronJobs[i]
			if err := r.renderCronJob(a, j, parts); err != nil {
				return fmt.Errorf("cron_jobs.%s: %w", j.Name, err)
			}
		}
	}
	return nil
}

func (r *renderer) renderServiceAccounts(a *app) error {
	for i, sa := range a.t.ServiceAccounts {
		if sa.Name == "" {
			return fmt.Errorf("service_accounts[%d]: name is required", i)
		}
		o := r.newObject(a, "v1", "ServiceAccount", sa.Name, nil)
		ann := o["metadata"].(obj)["annotations"].(obj)
		for k, v := range sa.Annotations {
			ann[k] = v
		}
		if sa.CloudRole != "" {
			ann["eks.amazonaws.com/role-arn"] = sa.CloudRole
		}
		r.add(o, "")
	}
	return nil
}

func (r *renderer) renderSharedVolumes(a *app) error {
	for i, v := range a.t.SharedVolumes {
		if v.Name == "" {
			return fmt.Errorf("shared_volumes[%d]: name is required", i)
		}
		pvc, err := r.pvc(a, dnsLabel(v.Name, 63), string(v.Size), v.Type, "ReadWriteMany", nil)
		if err != nil {
			return fmt.Errorf("shared_volumes.%s: %w", v.Name, err)
		}
		r.add(pvc, "")
	}
	return nil
}

// pvc builds a PersistentVolumeClaim; storage types map to classes through the daemon config.
func (r *renderer) pvc(a *app, name, size, typ, mode string, labels map[string]string) (obj, error) {
	if size == "" {
		size = defaultStorageSize
	}
	if _, err := resource.ParseQuantity(size); err != nil {
		return nil, fmt.Errorf("size %q is not a quantity", size)
	}
	o := r.newObject(a, "v1", "PersistentVolumeClaim", name, labels)
	spec := obj{
		"accessModes": []any{mode},
		"resources":   obj{"requests": obj{"storage": size}},
	}
	if class, ok := r.in.Context.StorageClasses[typ]; ok && typ != "" {
		spec["storageClassName"] = class
	}
	o["spec"] = spec
	return o, nil
}

// renderService writes a service's Deployment, env ConfigMap and Secret,
// file ConfigMaps, PVCs, Service and HPA, and returns the parts of its pod
// that jobs with from_services copy.
func (r *renderer) renderService(a *app, s *schema.Service) (*podParts, error) {
	task := "services." + s.Name
	labels := map[string]string{LabelService: s.Name}
	set, err := r.computeEnv(a, []string{s.Name}, [][]schema.EnvVar{s.Envs}, []string{"envs"})
	if err != nil {
		return nil, err
	}
	envFrom, envHash := r.envObjects(a, schema.ObjectName(s.Name)+"-env", set, labels)
	p := &podParts{image: a.images[s.Name], env: set, sa: s.ServiceAccountName, cpu: s.CPU, memory: s.Memory}
	fileHash, err := r.serviceFiles(a, s, labels, p)
	if err != nil {
		return nil, err
	}
	persistent, err := r.serviceVolumes(a, s, task, labels, p)
	if err != nil {
		return nil, err
	}
	p.nodeSelector = nodeSelector(a.t.NodeSelector, s.NodeSelector)
	pod, svcPorts, err := r.servicePod(a, s, envFrom, p)
	if err != nil {
		return nil, err
	}
	r.add(r.deployment(a, s, pod, shortHash(envHash+fileHash, 16), persistent, labels), task)
	if len(svcPorts) > 0 {
		r.add(r.kubeService(a, s, svcPorts, labels), task)
	}
	if s.Autoscale != nil {
		hpa, err := r.hpa(a, s, labels)
		if err != nil {
			return nil, fmt.Errorf("autoscale: %w", err)
		}
		r.add(hpa, task)
	}
	return p, nil
}

// servicePod builds the pod spec: the main container, sidecars and init
// containers, volumes, node selector and service account. It also returns
// the Service's ports, the sidecars' included.
func (r *renderer) servicePod(a *app, s *schema.Service, envFrom []any, p *podParts) (obj, []any, error) {
	main, err := r.mainContainer(a, s, envFrom, p.mounts)
	if err != nil {
		return nil, nil, err
	}
	svcPorts, err := servicePorts(s)
	if err != nil {
		return nil, nil, err
	}
	containers := []any{main}
	for i, c := range s.Sidecars {
		sc, ports, err := r.extraContainer(a, c, fmt.Sprintf("sidecars[%d]", i), envFrom, p.mounts)
		if err != nil {
			return nil, nil, err
		}
		containers = append(containers, sc)
		svcPorts = append(svcPorts, ports...)
	}
	pod := obj{"containers": containers}
	var inits []any
	for i, c := range s.Init {
		ic, _, err := r.extraContainer(a, c, fmt.Sprintf("init[%d]", i), envFrom, p.mounts)
		if err != nil {
			return nil, nil, err
		}
		inits = append(inits, ic)
	}
	if len(inits) > 0 {
		pod["initContainers"] = inits
	}
	if len(p.volumes) > 0 {
		pod["volumes"] = p.volumes
	}
	if len(p.nodeSelector) > 0 {
		pod["nodeSelector"] = p.nodeSelector
	}
	if s.ServiceAccountName != "" {
		pod["serviceAccountName"] = s.ServiceAccountName
	}
	if err := checkPodNames(containers, inits, p.volumes, svcPorts); err != nil {
		return nil, nil, err
	}
	return pod, svcPorts, nil
}

// checkPodNames refuses what the API server would: two containers (init
// containers included) or two volumes with one name, two Service ports with
// one number.
func checkPodNames(containers, inits, volumes, ports []any) error {
	seen := map[string]bool{}
	for _, list := range [][]any{containers, inits} {
		for _, c := range list {
			n := c.(obj)["name"].(string)
			if seen[n] {
				return fmt.Errorf("two containers are named %q (the service, its sidecars and init containers share names)", n)
			}
			seen[n] = true
		}
	}
	vols := map[string]bool{}
	for _, v := range volumes {
		n := v.(obj)["name"].(string)
		if vols[n] {
			return fmt.Errorf("two volumes are named %q", n)
		}
		vols[n] = true
	}
	nums := map[int64]bool{}
	for _, p := range ports {
		n := p.(obj)["port"].(int64)
		if nums[n] {
			return fmt.Errorf("port %d is used twice (by the service and a sidecar, or two sidecars)", n)
		}
		nums[n] = true
	}
	return nil
}

// deployment wraps the pod in the service's Deployment. The pod template's
// env-hash annotation rolls the pods when the env or files change.
func (r *renderer) deployment(a *app, s *schema.Service, pod obj, envHash string, persistent bool, labels map[string]string) obj {
	spec := obj{
		"selector": obj{"matchLabels": obj{LabelService: s.Name}},
		"template": obj{
			"metadata": obj{"labels": r.podLabels(LabelService, s.Name), "annotations": obj{AnnotationEnvHash: envHash}},
			"spec":     pod,
		},
	}
	if persistent {
		// A ReadWriteOnce volume cannot be attached to the new pod while the old one holds it.
		spec["strategy"] = obj{"type": "Recreate"}
	}
	if s.Autoscale == nil {
		spec["replicas"] = r.replicas(a, s)
	}
	d := r.newObject(a, "apps/v1", "Deployment", schema.ObjectName(s.Name), labels)
	d["spec"] = spec
	return d
}

// replicas is the service's replica count: its own, the environment
// template's, the template's, else 1.
func (r *renderer) replicas(a *app, s *schema.Service) int64 {
	if s.Replicas != nil {
		return int64(*s.Replicas)
	}
	if a.envTmpl != nil && a.envTmpl.Resources != nil && a.envTmpl.Resources.Replicas != nil {
		return int64(*a.envTmpl.Resources.Replicas)
	}
	if a.t.Resources != nil && a.t.Resources.Replicas != nil {
		return int64(*a.t.Resources.Replicas)
	}
	return 1
}

// mainContainer builds the service's own container.
func (r *renderer) mainContainer(a *app, s *schema.Service, envFrom, mounts []any) (obj, error) {
	c := obj{"name": schema.ObjectName(s.Name), "image": a.images[s.Name], "envFrom": envFrom}
	if len(s.Command) > 0 {
		c["command"] = anyStrings(s.Command)
	}
	if len(s.Args) > 0 {
		c["args"] = anyStrings(s.Args)
	}
	if ports := containerPorts(s.Ports); len(ports) > 0 {
		c["ports"] = ports
	}
	if len(mounts) > 0 {
		c["volumeMounts"] = mounts
	}
	res, err := r.resources(a, s.CPU, s.Memory)
	if err != nil {
		return nil, err
	}
	if res != nil {
		c["resources"] = res
	}
	for _, pr := range []struct {
		key string
		p   *schema.Probe
		f   string
	}{{"readinessProbe", s.ReadinessProbe, "readiness_probe"}, {"livenessProbe", s.LivenessProbe, "liveness_probe"}} {
		if pr.p == nil {
			continue
		}
		po, err := probe(pr.p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pr.f, err)
		}
		c[pr.key] = po
	}
	return c, nil
}

// extraContainer builds an init container or sidecar. It shares the
// service's env and volume mounts; its own envs come on top.
func (r *renderer) extraContainer(a *app, c schema.Container, field string, envFrom, mounts []any) (obj, []any, error) {
	if c.Name == "" {
		return nil, nil, fmt.Errorf("%s: name is required", field)
	}
	img := c.Image
	if c.FromServices != "" {
		var ok bool
		if img, ok = a.images[c.FromServices]; !ok {
			return nil, nil, fmt.Errorf("%s.from_services: no service named %q", field, c.FromServices)
		}
	}
	if img == "" {
		return nil, nil, fmt.Errorf("%s: image or from_services is required", field)
	}
	o := obj{"name": c.Name, "image": img, "envFrom": copyList(envFrom)}
	if len(c.Command) > 0 {
		o["command"] = anyStrings(c.Command)
	}
	if len(c.Args) > 0 {
		o["args"] = anyStrings(c.Args)
	}
	env, err := containerEnv(c.Envs, field+".envs")
	if err != nil {
		return nil, nil, err
	}
	if env != nil {
		o["env"] = env
	}
	if len(mounts) > 0 {
		o["volumeMounts"] = copyList(mounts)
	}
	var svcPorts []any
	if ports := containerPorts(c.Ports); len(ports) > 0 {
		o["ports"] = ports
		for _, p := range c.Ports {
			svcPorts = append(svcPorts, servicePort(c.Name+"-", p))
		}
	}
	return o, svcPorts, nil
}

// containerPorts lists each distinct target port once.
func containerPorts(ports []schema.Port) []any {
	seen := map[int64]bool{}
	var out []any
	for _, p := range ports {
		n := targetPort(p)
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, obj{"containerPort": n, "protocol": "TCP"})
	}
	return out
}

func targetPort(p schema.Port) int64 {
	if p.TargetPort != nil {
		return int64(*p.TargetPort)
	}
	return int64(p.Port)
}

func servicePort(prefix string, p schema.Port) obj {
	return obj{
		"name":       prefix + "port-" + strconv.Itoa(int(p.Port)),
		"port":       int64(p.Port),
		"targetPort": targetPort(p),
		"protocol":   "TCP",
	}
}

// servicePorts lists the service's ports for its Service, checking their range.
func servicePorts(s *schema.Service) ([]any, error) {
	seen := map[schema.Int]bool{}
	out := make([]any, 0, len(s.Ports))
	for i, p := range s.Ports {
		if p.Port < 1 || p.Port > 65535 {
			return nil, fmt.Errorf("ports[%d].port: %d is out of range", i, p.Port)
		}
		if p.TargetPort != nil && (*p.TargetPort < 1 || *p.TargetPort > 65535) {
			return nil, fmt.Errorf("ports[%d].target_port: %d is out of range", i, *p.TargetPort)
		}
		if seen[p.Port] {
			return nil, fmt.Errorf("ports[%d].port: %d is listed twice", i, p.Port)
		}
		seen[p.Port] = true
		out = append(out, servicePort("", p))
	}
	return out, nil
}

func (r *renderer) kubeService(a *app, s *schema.Service, ports []any, labels map[string]string) obj {
	o := r.newObject(a, "v1", "Service", schema.ObjectName(s.Name), labels)
	typ := "ClusterIP"
	for _, p := range s.Ports {
		if p.LoadBalancer {
			typ = "LoadBalancer"
		}
	}
	o["spec"] = obj{
		"type":     typ,
		"selector": obj{LabelService: s.Name},
		"ports":    ports,
	}
	return o
}

// hpa builds the service's HorizontalPodAutoscaler (autoscaling/v2).
func (r *renderer) hpa(a *app, s *schema.Service, labels map[string]string) (obj, error) {
	as := s.Autoscale
	if as.MaxReplicas < 1 {
		return nil, fmt.Errorf("max_replicas must be at least 1")
	}
	min := int64(1)
	if as.MinReplicas != nil {
		min = int64(*as.MinReplicas)
	}
	if min < 1 || min > int64(as.MaxReplicas) {
		return nil, fmt.Errorf("min_replicas %d must be between 1 and max_replicas %d", min, as.MaxReplicas)
	}
	metrics := as.Metrics
	if len(metrics) == 0 {
		metrics = []schema.AutoscaleMetric{{Resource: "cpu", Target: 80}}
	}
	ms := make([]any, 0, len(metrics))
	for i, m := range metrics {
		if m.Resource != "cpu" && m.Resource != "memory" {
			return nil, fmt.Errorf("metrics[%d].resource: %q is not cpu or memory", i, m.Resource)
		}
		target := obj{"type": "Utilization", "averageUtilization": int64(m.Target)}
		switch {
		case m.AverageValue != "":
			if _, err := resource.ParseQuantity(string(m.AverageValue)); err != nil {
				return nil, fmt.Errorf("metrics[%d].average_value: %q is not a quantity", i, m.AverageValue)
			}
			target = obj{"type": "AverageValue", "averageValue": string(m.AverageValue)}
		case m.Target < 1:
			return nil, fmt.Errorf("metrics[%d].target: must be a positive percentage", i)
		}
		ms = append(ms, obj{"type": "Resource", "resource": obj{"name": m.Resource, "target": target}})
	}
	o := r.newObject(a, "autoscaling/v2", "HorizontalPodAutoscaler", schema.ObjectName(s.Name), labels)
	o["spec"] = obj{
		"scaleTargetRef": obj{"apiVersion": "apps/v1", "kind": "Deployment", "name": schema.ObjectName(s.Name)},
		"minReplicas":    min,
		"maxReplicas":    int64(as.MaxReplicas),
		"metrics":        ms,
	}
	return o, nil
}

// resources merges a workload's cpu and memory over the environment
// template's resources and then the template's, field by field.
func (r *renderer) resources(a *app, cpu, mem *schema.Quantities) (obj, error) {
	var etCPU, etMem, tCPU, tMem *schema.Quantities
	if a.envTmpl != nil && a.envTmpl.Resources != nil {
		etCPU, etMem = a.envTmpl.Resources.CPU, a.envTmpl.Resources.Memory
	}
	if a.t.Resources != nil {
		tCPU, tMem = a.t.Resources.CPU, a.t.Resources.Memory
	}
	limits, requests := obj{}, obj{}
	for _, q := range []struct {
		name  string
		chain []*schema.Quantities
	}{{"cpu", []*schema.Quantities{cpu, etCPU, tCPU}}, {"memory", []*schema.Quantities{mem, etMem, tMem}}} {
		l, rq := pickQuantity(q.chain, true), pickQuantity(q.chain, false)
		for _, x := range []struct {
			v   string
			dst obj
			f   string
		}{{l, limits, "limits"}, {rq, requests, "requests"}} {
			if x.v == "" {
				continue
			}
			if _, err := resource.ParseQuantity(x.v); err != nil {
				return nil, fmt.Errorf("%s.%s: %q is not a quantity", q.name, x.f, x.v)
			}
			x.dst[q.name] = x.v
		}
	}
	res := obj{}
	if len(limits) > 0 {
		res["limits"] = limits
	}
	if len(requests) > 0 {
		res["requests"] = requests
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res, nil
}

func pickQuantity(chain []*schema.Quantities, limit bool) string {
	for _, q := range chain {
		if q == nil {
			continue
		}
		v := q.Requests
		if limit {
			v = q.Limits
		}
		if v != "" {
			return string(v)
		}
	}
	return ""
}

// probe converts a Release probe to a Kubernetes one.
func probe(p *schema.Probe) (obj, error) {
	o := obj{}
	n := 0
	if p.Exec != nil {
		n++
		if len(p.Exec.Command) == 0 {
			return nil, fmt.Errorf("exec.command is required")
		}
		o["exec"] = obj{"command": anyStrings(p.Exec.Command)}
	}
	if p.HTTPGet != nil {
		n++
		path := p.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		o["httpGet"] = obj{"path": path, "port": int64(p.HTTPGet.Port)}
	}
	if p.TCPSocket != nil {
		n++
		o["tcpSocket"] = obj{"port": int64(p.TCPSocket.Port)}
	}
	if n != 1 {
		return nil, fmt.Errorf("exactly one of exec, http_get and tcp_socket is required")
	}
	for _, t := range []struct {
		k string
		v *schema.Int
	}{
		{"periodSeconds", p.PeriodSeconds}, {"timeoutSeconds", p.TimeoutSeconds},
		{"failureThreshold", p.FailureThreshold}, {"successThreshold", p.SuccessThreshold},
		{"initialDelaySeconds", p.InitialDelaySeconds},
	} {
		if t.v != nil {
			o[t.k] = int64(*t.v)
		}
	}
	return o, nil
}

// nodeSelector merges the template's default selector with the service's.
func nodeSelector(def, own []schema.KeyValue) map[string]any {
	if len(def) == 0 && len(own) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, kv := range def {
		out[kv.Key] = string(kv.Value)
	}
	for _, kv := range own {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

// serviceVolumes adds the service's volumes and mounts to p, and a PVC per
// persistent volume (owned by the service's task). It reports whether any
// volume is persistent.
func (r *renderer) serviceVolumes(a *app, s *schema.Service, task string, labels map[string]string, p *podParts) (bool, error) {
	persistent := false
	shared := map[string]bool{}
	for _, v := range a.t.SharedVolumes {
		shared[v.Name] = true
	}
	for i, v := range s.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if v.MountPath == "" {
			return false, fmt.Errorf("%s.mount_path: required", field)
		}
		name := v.Name
		var src obj
		switch {
		case v.Claim != "":
			if !shared[v.Claim] {
				return false, fmt.Errorf("%s.claim: no shared volume named %q", field, v.Claim)
			}
			name = "shared-" + v.Claim
			src = obj{"persistentVolumeClaim": obj{"claimName": dnsLabel(v.Claim, 63)}}
		case v.Type == "persistent" || v.Type == "":
			if name == "" {
				return false, fmt.Errorf("%s.name: required for a persistent volume", field)
			}
			size, typ := string(v.Size), ""
			if s.Storage != nil {
				if size == "" {
					size = string(s.Storage.Size)
				}
				typ = s.Storage.Type
			}
			claim := dnsLabel(s.Name+"-"+name, 63)
			pvc, err := r.pvc(a, claim, size, typ, "ReadWriteOnce", labels)
			if err != nil {
				return false, fmt.Errorf("%s: %w", field, err)
			}
			r.add(pvc, task)
			persistent = true
			src = obj{"persistentVolumeClaim": obj{"claimName": claim}}
		case v.Type == "shmem" || v.Type == "empty_dir":
			if name == "" {
				name = fmt.Sprintf("%s-%d", v.Type, i)
			}
			ed := obj{}
			if v.Type == "shmem" {
				ed["medium"] = "Memory"
			}
			if v.Size != "" {
				if _, err := resource.ParseQuantity(string(v.Size)); err != nil {
					return false, fmt.Errorf("%s.size: %q is not a quantity", field, v.Size)
				}
				ed["sizeLimit"] = string(v.Size)
			}
			src = obj{"emptyDir": ed}
		default:
			return false, fmt.Errorf("%s.type: %q is not persistent, shmem or empty_dir", field, v.Type)
		}
		name = volumeName(name)
		src["name"] = name
		p.volumes = append(p.volumes, src)
		p.mounts = append(p.mounts, obj{"name": name, "mountPath": v.MountPath})
	}
	return persistent, nil
}

// volumeName makes a pod volume name a DNS label.
func volumeName(n string) string {
	s := slugify(n)
	if s == n && len(s) <= 63 {
		return s
	}
	return dnsLabel(n, 63)
}
