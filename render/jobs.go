package render

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"strings"

	"github.com/arbordev/arbor/schema"
)

// Job defaults.
const (
	defaultCompletedTimeout = 600   // seconds, docs/release-yaml.md#jobs
	jobTTLSeconds           = 86400 // finished Jobs stay a day for their logs
)

// jobPod builds the pod template of a job or cron job.
func (r *renderer) jobPod(a *app, j *schema.Job, kind string, parts map[string]*podParts) (obj, error) {
	var from *podParts
	if j.FromServices != "" {
		from = parts[j.FromServices]
		if from == nil {
			if _, exists := a.byName[j.FromServices]; exists {
				return nil, fmt.Errorf("from_services: service %q is not deployed (static or excluded)", j.FromServices)
			}
			return nil, fmt.Errorf("from_services: no service named %q", j.FromServices)
		}
	}
	img := j.Image
	if img == "" && from != nil {
		img = from.image
	}
	if img == "" {
		return nil, fmt.Errorf("image or from_services is required")
	}
	fileKeys := []string{j.Name}
	inline := [][]schema.EnvVar{j.Envs}
	fields := []string{"envs"}
	if from != nil {
		svc := a.byName[j.FromServices]
		fileKeys = []string{j.FromServices, j.Name}
		inline = [][]schema.EnvVar{svc.Envs, j.Envs}
		fields = []string{"services." + svc.Name + ".envs", "envs"}
	}
	set, err := r.computeEnv(a, fileKeys, inline, fields)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelJob: j.Name}
	envFrom, envHash := r.envObjects(a, kind+"-"+schema.ObjectName(j.Name)+"-env", set, labels)
	c := obj{"name": schema.ObjectName(j.Name), "image": img, "envFrom": envFrom}
	if len(j.Command) > 0 {
		c["command"] = anyStrings(j.Command)
	}
	if len(j.Args) > 0 {
		c["args"] = anyStrings(j.Args)
	}
	cpu, mem := j.CPU, j.Memory
	if from != nil {
		if cpu == nil {
			cpu = from.cpu
		}
		if mem == nil {
			mem = from.memory
		}
	}
	res, err := r.resources(a, cpu, mem)
	if err != nil {
		return nil, err
	}
	if res != nil {
		c["resources"] = res
	}
	pod := obj{"restartPolicy": "Never", "containers": []any{c}}
	sa := j.ServiceAccountName
	if from != nil {
		if len(from.mounts) > 0 {
			c["volumeMounts"] = copyList(from.mounts)
			pod["volumes"] = copyList(from.volumes)
		}
		if len(from.nodeSelector) > 0 {
			pod["nodeSelector"] = runtime.DeepCopyJSONValue(from.nodeSelector)
		}
		if sa == "" {
			sa = from.sa
		}
	} else if ns := nodeSelector(a.t.NodeSelector, nil); ns != nil {
		pod["nodeSelector"] = ns
	}
	if sa != "" {
		pod["serviceAccountName"] = sa
	}
	podLbl := r.podLabels(LabelJob, j.Name)
	for k, v := range j.Labels {
		podLbl[k] = v
	}
	return obj{
		"metadata": obj{"labels": podLbl, "annotations": obj{AnnotationEnvHash: envHash}},
		"spec":     pod,
	}, nil
}

// jobSpec is the spec shared by Jobs and cron jobs' job templates.
func (r *renderer) jobSpec(a *app, j *schema.Job, kind string, parts map[string]*podParts) (obj, error) {
	if j.Name == "" {
		return nil, fmt.Errorf("name is required")
	}
	for _, k := range sortedKeys(j.Labels) {
		if err := schema.CheckJobLabel(k, j.Labels[k]); err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
	}
	pod, err := r.jobPod(a, j, kind, parts)
	if err != nil {
		return nil, err
	}
	timeout := int64(defaultCompletedTimeout)
	if j.CompletedTimeout != nil {
		if *j.CompletedTimeout < 1 {
			return nil, fmt.Errorf("completed_timeout: must be a positive number of seconds")
		}
		timeout = int64(*j.CompletedTimeout)
	}
	spec := obj{
		"template":                pod,
		"activeDeadlineSeconds":   timeout,
		"ttlSecondsAfterFinished": int64(jobTTLSeconds),
	}
	if j.BackoffLimit != nil {
		if *j.BackoffLimit < 0 {
			return nil, fmt.Errorf("backoff_limit: must not be negative")
		}
		spec["backoffLimit"] = int64(*j.BackoffLimit)
	}
	return spec, nil
}

// renderJob writes a job's run: a Job named "<job>-<run hash>", where the
// hash covers the commit and the configuration, so each new commit or
// configuration runs the job again under a new name.
func (r *renderer) renderJob(a *app, j *schema.Job, parts map[string]*podParts) error {
	spec, err := r.jobSpec(a, j, "job", parts)
	if err != nil {
		return err
	}
	name := cutName(schema.ObjectName(j.Name), 63-9) + "-" + r.runHashFor(a)
	o := r.newObject(a, "batch/v1", "Job", name, jobLabels(j))
	o["spec"] = spec
	task := "jobs." + j.Name
	r.add(o, task)
	if j.HaltOnError {
		r.env.HaltOnError[task] = true
	}
	return nil
}

// runHashFor is the run hash of an app's jobs: the environment's
// configuration and the app's own commit. An imported app's jobs re-run when
// its commit moves, not when the importer's does, and the importer's jobs
// the other way round.
func (r *renderer) runHashFor(a *app) string {
	if !a.imported {
		return r.runHash
	}
	return shortHash(r.env.ConfigHash+"\x00"+a.name+"\x00"+a.commit, 8)
}

var concurrencyPolicies = map[string]string{"allow": "Allow", "forbid": "Forbid", "replace": "Replace"}

// renderCronJob writes a cron job as a CronJob named after it.
func (r *renderer) renderCronJob(a *app, j *schema.CronJob, parts map[string]*podParts) error {
	if strings.TrimSpace(j.Schedule) == "" {
		return fmt.Errorf("schedule is required")
	}
	spec, err := r.jobSpec(a, &j.Job, "cron", parts)
	if err != nil {
		return err
	}
	delete(spec, "ttlSecondsAfterFinished") // the CronJob's history limits clean up
	tl := r.podLabels(LabelJob, j.Name)
	for k, v := range j.Labels {
		tl[k] = v
	}
	cs := obj{
		"schedule":    j.Schedule,
		"jobTemplate": obj{"metadata": obj{"labels": tl}, "spec": spec},
	}
	if j.ConcurrencyPolicy != "" {
		p, ok := concurrencyPolicies[strings.ToLower(j.ConcurrencyPolicy)]
		if !ok {
			return fmt.Errorf("concurrency_policy: %q is not Allow, Forbid or Replace", j.ConcurrencyPolicy)
		}
		cs["concurrencyPolicy"] = p
	}
	o := r.newObject(a, "batch/v1", "CronJob", cutName(schema.ObjectName(j.Name), 52), jobLabels(&j.Job))
	o["spec"] = cs
	r.add(o, "")
	return nil
}

// jobLabels are a job's own labels (ext) and arbor's job label, which wins.
func jobLabels(j *schema.Job) map[string]string {
	l := make(map[string]string, len(j.Labels)+1)
	for k, v := range j.Labels {
		l[k] = v
	}
	l[LabelJob] = j.Name
	return l
}
