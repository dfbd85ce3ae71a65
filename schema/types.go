package schema

import "gopkg.in/yaml.v3"

// Template is the Application Template: what a branch's environment is made of.
// Field names follow Release's keys (docs/release-yaml.md#top-level-keys). Keys arbor accepts
// without acting on them are kept as raw values so validation can warn about them.
type Template struct {
	App                   string                `yaml:"app,omitempty" json:"app,omitempty"`
	RepoName              string                `yaml:"repo_name,omitempty" json:"repo_name,omitempty"`
	Domain                string                `yaml:"domain,omitempty" json:"domain,omitempty"`
	TrackingBranch        string                `yaml:"tracking_branch,omitempty" json:"tracking_branch,omitempty"`
	TrackingTag           string                `yaml:"tracking_tag,omitempty" json:"tracking_tag,omitempty"`
	AutoDeploy            *bool                 `yaml:"auto_deploy,omitempty" json:"auto_deploy,omitempty"`
	Context               string                `yaml:"context,omitempty" json:"context,omitempty"`
	Resources             *Resources            `yaml:"resources,omitempty" json:"resources,omitempty"`
	NodeSelector          []KeyValue            `yaml:"node_selector,omitempty" json:"node_selector,omitempty"`
	Hostnames             []map[string]string   `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
	Rules                 []Rule                `yaml:"rules,omitempty" json:"rules,omitempty"`
	Ingress               *Ingress              `yaml:"ingress,omitempty" json:"ingress,omitempty"`
	Services              []Service             `yaml:"services,omitempty" json:"services,omitempty"`
	Jobs                  []Job                 `yaml:"jobs,omitempty" json:"jobs,omitempty"`
	CronJobs              []CronJob             `yaml:"cron_jobs,omitempty" json:"cron_jobs,omitempty"`
	Workflows             []Workflow            `yaml:"workflows,omitempty" json:"workflows,omitempty"`
	EnvironmentTemplates  []EnvironmentTemplate `yaml:"environment_templates,omitempty" json:"environment_templates,omitempty"`
	AppImports            []AppImport           `yaml:"app_imports,omitempty" json:"app_imports,omitempty"`
	SharedVolumes         []SharedVolume        `yaml:"shared_volumes,omitempty" json:"shared_volumes,omitempty"`
	Parameters            []Parameter           `yaml:"parameters,omitempty" json:"parameters,omitempty"`
	ServiceAccounts       []ServiceAccount      `yaml:"service_accounts,omitempty" json:"service_accounts,omitempty"`
	CustomLinks           []Link                `yaml:"custom_links,omitempty" json:"custom_links,omitempty"`
	GitFetchDepth         *int                  `yaml:"git_fetch_depth,omitempty" json:"git_fetch_depth,omitempty"`
	ParallelizeAppImports bool                  `yaml:"parallelize_app_imports,omitempty" json:"parallelize_app_imports,omitempty"`
	Kustomize             []KustomizeDir        `yaml:"kustomize,omitempty" json:"kustomize,omitempty"`
	Charts                []Chart               `yaml:"charts,omitempty" json:"charts,omitempty"`
	Builds                []Build               `yaml:"builds,omitempty" json:"builds,omitempty"`
	Helm                  *HelmDefaults         `yaml:"helm,omitempty" json:"helm,omitempty"`
	Branches              *BranchFilter         `yaml:"branches,omitempty" json:"branches,omitempty"`
}

// Resources are CPU, memory and replica defaults (template-wide) or overrides (per service).
type Resources struct {
	CPU      *Quantities `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	Memory   *Quantities `yaml:"memory,omitempty" json:"memory,omitempty"`
	Replicas *int        `yaml:"replicas,omitempty" json:"replicas,omitempty"`
}

// Quantities are a resource's limit and request, as Kubernetes quantity strings.
type Quantities struct {
	Limits   Scalar `yaml:"limits,omitempty" json:"limits,omitempty"`
	Requests Scalar `yaml:"requests,omitempty" json:"requests,omitempty"`
}

// KeyValue is one {key, value} pair, as Release writes node selectors.
type KeyValue struct {
	Key   string `yaml:"key" json:"key"`
	Value Scalar `yaml:"value" json:"value"`
}

// Rule routes a path prefix on some hosts to a service's first node_port port.
type Rule struct {
	Service   string   `yaml:"service" json:"service"`
	Hostnames []string `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
	Path      string   `yaml:"path,omitempty" json:"path,omitempty"`
}

// Ingress holds the settings of the environment's one Ingress.
type Ingress struct {
	ClassName        string            `yaml:"class_name,omitempty" json:"class_name,omitempty"`
	Annotations      map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	TLS              *IngressTLS       `yaml:"tls,omitempty" json:"tls,omitempty"`
	ProxyBodySize    Scalar            `yaml:"proxy_body_size,omitempty" json:"proxy_body_size,omitempty"`
	ProxyReadTimeout Scalar            `yaml:"proxy_read_timeout,omitempty" json:"proxy_read_timeout,omitempty"`
	ProxySendTimeout Scalar            `yaml:"proxy_send_timeout,omitempty" json:"proxy_send_timeout,omitempty"`
}

// IngressTLS names the Secret holding the Ingress certificate.
type IngressTLS struct {
	SecretName string `yaml:"secret_name,omitempty" json:"secret_name,omitempty"`
}

// Service is one long-running workload: a Deployment, and a Service when it has ports.
type Service struct {
	Name               string          `yaml:"name" json:"name"`
	Image              string          `yaml:"image,omitempty" json:"image,omitempty"`
	HasRepo            bool            `yaml:"has_repo,omitempty" json:"has_repo,omitempty"`
	Build              any             `yaml:"build,omitempty" json:"build,omitempty"`
	Command            []string        `yaml:"command,omitempty" json:"command,omitempty"`
	Args               []string        `yaml:"args,omitempty" json:"args,omitempty"`
	Ports              []Port          `yaml:"ports,omitempty" json:"ports,omitempty"`
	DependsOn          []string        `yaml:"depends_on,omitempty" json:"depends_on,omitempty"`
	ReadinessProbe     *Probe          `yaml:"readiness_probe,omitempty" json:"readiness_probe,omitempty"`
	LivenessProbe      *Probe          `yaml:"liveness_probe,omitempty" json:"liveness_probe,omitempty"`
	Envs               []EnvVar        `yaml:"envs,omitempty" json:"envs,omitempty"`
	CPU                *Quantities     `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	Memory             *Quantities     `yaml:"memory,omitempty" json:"memory,omitempty"`
	Replicas           *int            `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	NodeSelector       []KeyValue      `yaml:"node_selector,omitempty" json:"node_selector,omitempty"`
	Volumes            []Volume        `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	Storage            *Storage        `yaml:"storage,omitempty" json:"storage,omitempty"`
	ConfigMap          []ConfigMapFile `yaml:"configmap,omitempty" json:"configmap,omitempty"`
	Init               []Container     `yaml:"init,omitempty" json:"init,omitempty"`
	Sidecars           []Container     `yaml:"sidecars,omitempty" json:"sidecars,omitempty"`
	Autoscale          *Autoscale      `yaml:"autoscale,omitempty" json:"autoscale,omitempty"`
	ServiceAccountName string          `yaml:"service_account_name,omitempty" json:"service_account_name,omitempty"`
	// Static marks a static-site service: accepted, warned about, not deployed.
	Static bool `yaml:"static,omitempty" json:"static,omitempty"`
}

// Port is one port of a service. Numbers may be written as quoted strings.
type Port struct {
	Type         string `yaml:"type,omitempty" json:"type,omitempty"` // container_port or node_port
	Port         Int    `yaml:"port" json:"port"`
	TargetPort   *Int   `yaml:"target_port,omitempty" json:"target_port,omitempty"`
	LoadBalancer bool   `yaml:"loadbalancer,omitempty" json:"loadbalancer,omitempty"`
}

// Probe is a readiness or liveness check, in Release's spelling.
type Probe struct {
	Exec                *ExecAction `yaml:"exec,omitempty" json:"exec,omitempty"`
	HTTPGet             *HTTPGet    `yaml:"http_get,omitempty" json:"http_get,omitempty"`
	TCPSocket           *TCPSocket  `yaml:"tcp_socket,omitempty" json:"tcp_socket,omitempty"`
	PeriodSeconds       *Int        `yaml:"period_seconds,omitempty" json:"period_seconds,omitempty"`
	TimeoutSeconds      *Int        `yaml:"timeout_seconds,omitempty" json:"timeout_seconds,omitempty"`
	FailureThreshold    *Int        `yaml:"failure_threshold,omitempty" json:"failure_threshold,omitempty"`
	SuccessThreshold    *Int        `yaml:"success_threshold,omitempty" json:"success_threshold,omitempty"`
	InitialDelaySeconds *Int        `yaml:"initial_delay_seconds,omitempty" json:"initial_delay_seconds,omitempty"`
}

// ExecAction runs a command in the container.
type ExecAction struct {
	Command []string `yaml:"command" json:"command"`
}

// HTTPGet probes a path on a port.
type HTTPGet struct {
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	Port Int    `yaml:"port" json:"port"`
}

// TCPSocket probes that a port accepts connections.
type TCPSocket struct {
	Port Int `yaml:"port" json:"port"`
}

// EnvVar is one inline variable. Value may be any scalar in YAML; it is kept as text.
type EnvVar struct {
	Key    string `yaml:"key" json:"key"`
	Value  Scalar `yaml:"value,omitempty" json:"value,omitempty"`
	Secret bool   `yaml:"secret,omitempty" json:"secret,omitempty"`
}

// Volume is a persistent, shmem/empty_dir, or shared (claim) volume of a service.
type Volume struct {
	Name      string `yaml:"name,omitempty" json:"name,omitempty"`
	Type      string `yaml:"type,omitempty" json:"type,omitempty"` // persistent, shmem, empty_dir
	Size      Scalar `yaml:"size,omitempty" json:"size,omitempty"`
	MountPath string `yaml:"mount_path" json:"mount_path"`
	Claim     string `yaml:"claim,omitempty" json:"claim,omitempty"`
}

// Storage sets the size and class type of a service's persistent volumes.
type Storage struct {
	Size Scalar `yaml:"size,omitempty" json:"size,omitempty"`
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
}

// ConfigMapFile mounts files from the branch's tree into a service.
type ConfigMapFile struct {
	Name      string `yaml:"name" json:"name"`
	MountPath string `yaml:"mount_path" json:"mount_path"`
	RepoPath  string `yaml:"repo_path" json:"repo_path"`
}

// Container is an init container or a sidecar.
type Container struct {
	Name         string   `yaml:"name" json:"name"`
	Image        string   `yaml:"image,omitempty" json:"image,omitempty"`
	FromServices string   `yaml:"from_services,omitempty" json:"from_services,omitempty"`
	Command      []string `yaml:"command,omitempty" json:"command,omitempty"`
	Args         []string `yaml:"args,omitempty" json:"args,omitempty"`
	Envs         []EnvVar `yaml:"envs,omitempty" json:"envs,omitempty"`
	Ports        []Port   `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// Autoscale becomes a HorizontalPodAutoscaler (autoscaling/v2).
type Autoscale struct {
	MinReplicas *Int              `yaml:"min_replicas,omitempty" json:"min_replicas,omitempty"`
	MaxReplicas Int               `yaml:"max_replicas" json:"max_replicas"`
	Metrics     []AutoscaleMetric `yaml:"metrics,omitempty" json:"metrics,omitempty"`
}

// AutoscaleMetric is a resource target. Two spellings are read:
// {resource: cpu, target: 80} and Release's
// {resource: {name: cpu, average_utilization: 80}} or
// {resource: {name: memory, average_value: 100Mi}}. Either way Resource is the
// resource name; Target (percent) is set from target or average_utilization,
// AverageValue from average_value.
type AutoscaleMetric struct {
	Resource     string `yaml:"resource" json:"resource"` // cpu or memory
	Target       Int    `yaml:"target" json:"target"`     // average utilization, percent
	AverageValue Scalar `yaml:"average_value,omitempty" json:"average_value,omitempty"`
}

// UnmarshalYAML reads both spellings of a metric.
func (m *AutoscaleMetric) UnmarshalYAML(n *yaml.Node) error {
	var flat struct {
		Resource yaml.Node `yaml:"resource"`
		Target   Int       `yaml:"target"`
	}
	if err := n.Decode(&flat); err != nil {
		return err
	}
	m.Target = flat.Target
	if flat.Resource.Kind != yaml.MappingNode {
		return flat.Resource.Decode(&m.Resource)
	}
	var nested struct {
		Name               string `yaml:"name"`
		AverageUtilization *Int   `yaml:"average_utilization"`
		AverageValue       Scalar `yaml:"average_value"`
	}
	if err := flat.Resource.Decode(&nested); err != nil {
		return err
	}
	m.Resource = nested.Name
	m.AverageValue = nested.AverageValue
	if nested.AverageUtilization != nil {
		m.Target = *nested.AverageUtilization
	}
	return nil
}

// Job is a one-off task run by a workflow; from_services copies a service's image, env and volumes.
type Job struct {
	Name               string      `yaml:"name" json:"name"`
	FromServices       string      `yaml:"from_services,omitempty" json:"from_services,omitempty"`
	Image              string      `yaml:"image,omitempty" json:"image,omitempty"`
	Command            []string    `yaml:"command,omitempty" json:"command,omitempty"`
	Args               []string    `yaml:"args,omitempty" json:"args,omitempty"`
	Envs               []EnvVar    `yaml:"envs,omitempty" json:"envs,omitempty"`
	CPU                *Quantities `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	Memory             *Quantities `yaml:"memory,omitempty" json:"memory,omitempty"`
	CompletedTimeout   *Int        `yaml:"completed_timeout,omitempty" json:"completed_timeout,omitempty"`
	HaltOnError        bool        `yaml:"halt_on_error,omitempty" json:"halt_on_error,omitempty"`
	ServiceAccountName string      `yaml:"service_account_name,omitempty" json:"service_account_name,omitempty"`
	BackoffLimit       *Int        `yaml:"backoff_limit,omitempty" json:"backoff_limit,omitempty"`
	// Labels (ext) are extra labels on the Job and its pods; arbor's own
	// label keys are refused.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// CronJob is a job run on a schedule.
type CronJob struct {
	Job               `yaml:",inline" json:",inline"`
	Schedule          string `yaml:"schedule" json:"schedule"`
	ConcurrencyPolicy string `yaml:"concurrency_policy,omitempty" json:"concurrency_policy,omitempty"`
}

// Workflow is a named stage (setup, patch, teardown, or any other name run on request).
// Exactly one of Parallelize and OrderFrom is normally set.
type Workflow struct {
	Name        string   `yaml:"name" json:"name"`
	Parallelize []Step   `yaml:"parallelize,omitempty" json:"parallelize,omitempty"`
	OrderFrom   []string `yaml:"order_from,omitempty" json:"order_from,omitempty"`
}

// Step runs its tasks in parallel; steps run one after another.
type Step struct {
	Step          string   `yaml:"step" json:"step"`
	Tasks         []string `yaml:"tasks" json:"tasks"`
	WaitForFinish *bool    `yaml:"wait_for_finish,omitempty" json:"wait_for_finish,omitempty"`
	HaltOnError   bool     `yaml:"halt_on_error,omitempty" json:"halt_on_error,omitempty"`
}

// EnvironmentTemplate overrides parts of the template for the environments it applies to.
type EnvironmentTemplate struct {
	Name         string              `yaml:"name" json:"name"`
	Branches     Globs               `yaml:"branches,omitempty" json:"branches,omitempty"`
	Resources    *Resources          `yaml:"resources,omitempty" json:"resources,omitempty"`
	Hostnames    []map[string]string `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
	Parameters   []Parameter         `yaml:"parameters,omitempty" json:"parameters,omitempty"`
	ExpiresAfter string              `yaml:"expires_after,omitempty" json:"expires_after,omitempty"`
}

// AppImport joins another app's services into this app's environments.
type AppImport struct {
	Name            string    `yaml:"name" json:"name"`
	Branch          string    `yaml:"branch,omitempty" json:"branch,omitempty"`
	ExcludeServices []NameRef `yaml:"exclude_services,omitempty" json:"exclude_services,omitempty"`
}

// NameRef is {name: x}.
type NameRef struct {
	Name string `yaml:"name" json:"name"`
}

// SharedVolume is one PVC per environment that services mount with {claim: name}.
type SharedVolume struct {
	Name string `yaml:"name" json:"name"`
	Size Scalar `yaml:"size,omitempty" json:"size,omitempty"`
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
}

// Parameter is a value set per app in the daemon config, referenced as ${parameters.NAME}.
type Parameter struct {
	Name        string `yaml:"name" json:"name"`
	Type        string `yaml:"type,omitempty" json:"type,omitempty"`
	Default     Scalar `yaml:"default,omitempty" json:"default,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Optional    bool   `yaml:"optional,omitempty" json:"optional,omitempty"`
}

// ServiceAccount is a ServiceAccount per environment; CloudRole becomes the EKS role annotation.
type ServiceAccount struct {
	Name        string            `yaml:"name" json:"name"`
	CloudRole   string            `yaml:"cloud_role,omitempty" json:"cloud_role,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Link is a named URL shown with the environment.
type Link struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
}

// KustomizeDir is a kustomize directory in the repository, built per environment.
type KustomizeDir struct {
	Path string `yaml:"path" json:"path"`
}

// EnvVars is the environment-variables document (file or inline).
type EnvVars struct {
	Defaults []EnvVar            `yaml:"defaults,omitempty" json:"defaults,omitempty"`
	Services map[string][]EnvVar `yaml:"services,omitempty" json:"services,omitempty"`
	// Mapping is computed last; keys keep their file order (see MappingOrder).
	Mapping map[string]string `yaml:"mapping,omitempty" json:"mapping,omitempty"`
	// MappingOrder lists Mapping's keys in the order the file writes them.
	MappingOrder []string `yaml:"-" json:"-"`
}

// UnmarshalYAML decodes the document and records the order of mapping keys.
// Mapping values may be any scalar; they are kept as text.
func (e *EnvVars) UnmarshalYAML(n *yaml.Node) error {
	var doc struct {
		Defaults []EnvVar            `yaml:"defaults"`
		Services map[string][]EnvVar `yaml:"services"`
		Mapping  yaml.Node           `yaml:"mapping"`
	}
	// Keep what decodes and report the rest, like yaml.v3 does for structs.
	errs := &yaml.TypeError{}
	collect := func(err error) {
		if te, ok := err.(*yaml.TypeError); ok {
			errs.Errors = append(errs.Errors, te.Errors...)
		} else if err != nil {
			errs.Errors = append(errs.Errors, err.Error())
		}
	}
	collect(n.Decode(&doc))
	e.Defaults, e.Services = doc.Defaults, doc.Services
	m := &doc.Mapping
	if m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
	}
	if m.Kind == yaml.MappingNode {
		e.Mapping = make(map[string]string, len(m.Content)/2)
		for i := 0; i+1 < len(m.Content); i += 2 {
			var v Scalar
			if err := m.Content[i+1].Decode(&v); err != nil {
				collect(err)
				continue
			}
			k := m.Content[i].Value
			if _, dup := e.Mapping[k]; !dup {
				e.MappingOrder = append(e.MappingOrder, k)
			}
			e.Mapping[k] = string(v)
		}
	}
	if len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
