package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/arbordev/arbor/internal/testcluster"
)

// client talks to the cluster as one identity.
type client struct {
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newClient(t testing.TB, cfg *rest.Config) *client {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &client{cs: cs, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// resource returns the dynamic client for obj's kind in obj's namespace.
func (c *client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", gvk.Kind, obj.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		return c.dyn.Resource(m.Resource), nil
	}
	return c.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
}

// apply server-side applies obj (as `kubectl apply --server-side` would), for
// real or as a dry run.
func (c *client) apply(ctx context.Context, obj *unstructured.Unstructured, manager string, dryRun bool) (*unstructured.Unstructured, error) {
	r, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: manager, Force: ptr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return r.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
}

// create creates obj, for real or as a dry run.
func (c *client) create(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	r, err := c.resource(obj)
	if err != nil {
		return err
	}
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = r.Create(ctx, obj, opts)
	return err
}

// delete deletes obj, for real or as a dry run.
func (c *client) delete(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	r, err := c.resource(obj)
	if err != nil {
		return err
	}
	opts := metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return r.Delete(ctx, obj.GetName(), opts)
}

func ptr[T any](v T) *T { return &v }

// obj builds an unstructured object from apiVersion, kind, namespace, name and the rest.
func obj(apiVersion, kind, ns, name string, labels map[string]string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	if labels != nil {
		u.SetLabels(labels)
	}
	return u
}

// install applies, as the cluster admin, the objects of dir that give arbor its
// identity and limits: namespace, ServiceAccount, RBAC and admission policy.
// It leaves them installed, as `kubectl apply -k deploy/` would.
func install(t *testing.T, ctx context.Context, admin *client, dir string) {
	t.Helper()
	keep := map[string]bool{
		"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true,
		"Role": true, "RoleBinding": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
		"Service": true, // its port wake is where paused environments route (docs/pausing.md)
	}
	for _, o := range build(t, dir) {
		if !keep[o.GetKind()] {
			continue
		}
		if _, err := admin.apply(ctx, o, fieldOwner, false); err != nil {
			t.Fatalf("install %s: %v", dir, err)
		}
	}
}

// serviceAccountKubeconfig requests a token for arbor's ServiceAccount through
// the TokenRequest API and writes a kubeconfig that authenticates with it alone
// (the cluster's CA, no client certificate). It returns the file and its config.
func serviceAccountKubeconfig(t *testing.T, ctx context.Context, admin *client, adminCfg *rest.Config) (string, *rest.Config) {
	t.Helper()
	tr, err := admin.cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, saName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, saName, err)
	}
	ca := adminCfg.TLSClientConfig.CAData
	if len(ca) == 0 && adminCfg.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(adminCfg.TLSClientConfig.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: adminCfg.Host, CertificateAuthorityData: ca, InsecureSkipTLSVerify: len(ca) == 0 && adminCfg.TLSClientConfig.Insecure}
	kc.AuthInfos["arbor"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["arbor"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "arbor"}
	kc.CurrentContext = "arbor"
	path := filepath.Join(t.TempDir(), "arbor.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("the ServiceAccount's kubeconfig does not load: %v", err)
	}
	if len(cfg.TLSClientConfig.CertData) > 0 || cfg.TLSClientConfig.CertFile != "" || cfg.Username != "" {
		t.Fatal("the ServiceAccount's kubeconfig carries another credential besides the token")
	}
	return path, cfg
}

// waitInForce waits until the API server enforces what install applied: RBAC
// lets arbor create namespaces, and the admission policy refuses kube-system.
// Both take effect asynchronously (informers in the API server).
func waitInForce(t *testing.T, ctx context.Context, arbor *client) {
	t.Helper()
	probe := obj("v1", "ConfigMap", "kube-system", "arbor-probe", managed("probe"), nil)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ns := obj("v1", "Namespace", "", testcluster.Name("arbor-probe"), managed("probe"), nil)
		if last = arbor.create(ctx, ns, true); last != nil {
			return false, nil
		}
		last = arbor.create(ctx, probe, true)
		return apierrors.IsForbidden(last) && strings.Contains(last.Error(), "arbor may not write to namespace kube-system"), nil
	})
	if err != nil {
		t.Fatalf("RBAC and admission policy not in force after 60s; last answer: %v", last)
	}
}

// managed returns the labels arbor puts on everything it writes, as the
// install deploy/ makes (its install is its namespace).
func managed(env string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by": "arbor",
		"arbor.dev/install":            namespace,
		"arbor.dev/app":                "rbactest",
		"arbor.dev/env":                env,
	}
}
