package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// watchedKinds are the kinds arbor renders, watched (metadata only) to spot
// drift and to tell an unchanged environment from the cache alone. Objects
// of other kinds (from kustomize directories) are applied and pruned like the
// rest but their hand edits are only undone on the next change of the branch.
// Secrets are one of those: watching them takes list and watch on Secrets in
// the whole cluster, which arbor does not hold (docs/security.md).
var watchedKinds = map[schema.GroupKind]schema.GroupVersionResource{
	{Kind: "Namespace"}:                                       {Version: "v1", Resource: "namespaces"},
	{Kind: "ConfigMap"}:                                       {Version: "v1", Resource: "configmaps"},
	{Kind: "Service"}:                                         {Version: "v1", Resource: "services"},
	{Kind: "ServiceAccount"}:                                  {Version: "v1", Resource: "serviceaccounts"},
	{Kind: "PersistentVolumeClaim"}:                           {Version: "v1", Resource: "persistentvolumeclaims"},
	{Kind: "ResourceQuota"}:                                   {Version: "v1", Resource: "resourcequotas"},
	{Kind: "LimitRange"}:                                      {Version: "v1", Resource: "limitranges"},
	{Group: "apps", Kind: "Deployment"}:                       {Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Kind: "StatefulSet"}:                      {Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "batch", Kind: "Job"}:                             {Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Kind: "CronJob"}:                         {Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Group: "networking.k8s.io", Kind: "Ingress"}:             {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:   {Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"},
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// Indexes of the namespace informer: by app, and by app and branch (the
// branch annotation; namespaces without one are indexed under the app and "").
const (
	indexApp       = "app"
	indexAppBranch = "app-branch"
)

// clusterCache is the daemon's view of the cluster: arbor's objects
// (metadata only), the environments' namespaces indexed by app, and their
// state records.
type clusterCache struct {
	log       *slog.Logger
	install   string // this install: environments of others are not seen
	objects   map[schema.GroupKind]toolscache.SharedIndexInformer
	states    toolscache.SharedIndexInformer
	decoded   decodedStates
	onChange  func(namespace string, itself bool) // itself: the Namespace object changed, not something in it
	informers []toolscache.SharedIndexInformer    // all of the above
	startOnce sync.Once
}

func newClusterCache(meta metadata.Interface, cs kubernetes.Interface, install string, log *slog.Logger, onChange func(string, bool)) (*clusterCache, error) {
	managed := labels.Set{render.LabelManagedBy: render.ManagedByValue}.String()
	c := &clusterCache{log: log, install: install, onChange: onChange, objects: map[schema.GroupKind]toolscache.SharedIndexInformer{},
		decoded: decodedStates{m: map[string]decodedState{}}}
	// The informers are built one by one, not from a factory: a factory's
	// come with an index by namespace, a set per namespace and kind that
	// nothing here reads (a few KiB per environment).
	selectManaged := func(o *metav1.ListOptions) { o.LabelSelector = managed }
	for gk, gvr := range watchedKinds {
		indexers, transform := toolscache.Indexers{}, slimObject
		if gk.Kind == "Namespace" {
			indexers = toolscache.Indexers{indexApp: appIndex, indexAppBranch: appBranchIndex}
			transform = slim // its labels and annotations are the environment's identity
		}
		inf := metadatainformer.NewFilteredMetadataInformer(meta, gvr, metav1.NamespaceAll, 0, indexers, selectManaged).Informer()
		if err := inf.SetTransform(transform); err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(c.handler(gk.Kind == "Namespace")); err != nil {
			return nil, err
		}
		c.objects[gk] = inf
		c.informers = append(c.informers, inf)
	}
	// The records are arbor's own writes: their events trigger nothing but
	// forgetting a deleted record's decoded copy.
	c.states = coreinformers.NewFilteredConfigMapInformer(cs, metav1.NamespaceAll, 0, toolscache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = managed
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", StateConfigMap).String()
	})
	if err := c.states.SetTransform(c.slimRecord); err != nil {
		return nil, err
	}
	if _, err := c.states.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if m, err := metaOf(obj); err == nil {
			c.decoded.forget(m.GetNamespace(), m.GetResourceVersion())
		}
	}}); err != nil {
		return nil, err
	}
	c.informers = append(c.informers, c.states)
	return c, nil
}

// slimRecord decodes a record ConfigMap as it enters the cache and keeps of
// it only its name and version: the decoded record is the one copy held (a
// thousand records' JSON kept beside their decoded form was the cache's
// largest part after the renders), and its labels are read only by the
// decoding.
func (c *clusterCache) slimRecord(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	if cm.Data != nil || cm.BinaryData != nil {
		c.decoded.put(cm)
	}
	*cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: cm.Namespace, UID: cm.UID,
		ResourceVersion: cm.ResourceVersion, DeletionTimestamp: cm.DeletionTimestamp}}
	return cm, nil
}

// slim drops what the cache never reads — of managedFields all but the
// entries appliedSince and writtenByOthersSince look at (writes to the
// object itself, not its status, by anyone but the controllers), and of
// those all but manager, operation and time; kubectl's last-applied
// annotation — to keep memory small with thousands of objects.
func slim(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	for _, f := range m.GetManagedFields() {
		if f.Subresource != "" || f.Manager == controllerManager {
			continue
		}
		if f.Manager == fieldManager {
			f.Manager = fieldManager // the constant, not a decoded copy per object
		}
		kept = append(kept, metav1.ManagedFieldsEntry{Manager: f.Manager, Operation: f.Operation, Time: f.Time})
	}
	m.SetManagedFields(kept)
	delete(m.GetAnnotations(), "kubectl.kubernetes.io/last-applied-configuration")
	return obj, nil
}

// managedLabels is the labels every object in an environment (not its
// Namespace) keeps in the cache: the cache reads only whether arbor manages
// it. One map, shared read-only by all of them: a map of its own per object
// was the largest part of a cached object.
var managedLabels = map[string]string{render.LabelManagedBy: render.ManagedByValue}

// slimObject is slim for the objects in an environments' namespaces: the
// cache reads only their generation or resourceVersion, whether arbor
// manages them and who wrote them when (managedFields' managers and times),
// so their kind (the informer knows it), other labels, annotations, owner
// references and finalizers are dropped.
func slimObject(obj any) (any, error) {
	obj, _ = slim(obj)
	if p, ok := obj.(*metav1.PartialObjectMetadata); ok {
		p.TypeMeta = metav1.TypeMeta{}
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	if m.GetLabels()[render.LabelManagedBy] == render.ManagedByValue {
		m.SetLabels(managedLabels)
	} else {
		m.SetLabels(nil)
	}
	m.SetAnnotations(nil)
	m.SetOwnerReferences(nil)
	m.SetFinalizers(nil)
	return obj, nil
}

func appIndex(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	if app := m.GetLabels()[render.LabelApp]; app != "" {
		return []string{app}, nil
	}
	return nil, nil
}

func appBranchIndex(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	if app := m.GetLabels()[render.LabelApp]; app != "" {
		return []string{appBranchKey(app, m.GetAnnotations()[render.AnnotationBranch])}, nil
	}
	return nil, nil
}

func appBranchKey(app, branch string) string { return app + "\x00" + branch }

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	switch o := obj.(type) {
	case metav1.Object:
		return o, nil
	default:
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
}

// handler reports every add, real update and delete as a change of the
// object's environment namespace.
func (c *clusterCache) handler(isNamespace bool) toolscache.ResourceEventHandler {
	report := func(obj any) {
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		ns := m.GetNamespace()
		if isNamespace {
			ns = m.GetName()
		}
		if ns != "" {
			c.onChange(ns, isNamespace)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: report,
		UpdateFunc: func(old, cur any) {
			o, err1 := metaOf(old)
			n, err2 := metaOf(cur)
			if err1 == nil && err2 == nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return
			}
			report(cur)
		},
		DeleteFunc: report,
	}
}

// start runs the informers and waits for their first listing.
func (c *clusterCache) start(ctx context.Context) error {
	c.startOnce.Do(func() {
		for _, inf := range c.informers {
			go inf.RunWithContext(ctx)
		}
	})
	if !toolscache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("cluster cache: %w", ctx.Err())
	}
	return nil
}

// synced reports whether every informer finished its first listing.
func (c *clusterCache) synced() bool {
	for _, inf := range c.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// envRecord is an environment as the cluster shows it.
type envRecord struct {
	// Legacy: the namespace has no install label (written by an arbor older
	// than install identities). It is adopted when its branch is listed,
	// never deleted on the say-so of this install alone.
	Legacy    bool
	Namespace string
	App       string
	EnvID     string
	Branch    string
	Deleting  bool
	Keep      bool
	// Annotations are the namespace's: arbor.dev/keep and the deploy request.
	Annotations map[string]string
	State       *envState // nil when the namespace has no (readable) record yet
}

// envs returns the environments of app: namespaces carrying arbor's labels for it.
func (c *clusterCache) envs(app string) []*envRecord {
	objs, err := c.objects[schema.GroupKind{Kind: "Namespace"}].GetIndexer().ByIndex(indexApp, app)
	if err != nil {
		return nil
	}
	out := make([]*envRecord, 0, len(objs))
	for _, o := range objs {
		if rec := c.record(o); rec != nil {
			out = append(out, rec)
		}
	}
	return out
}

// env returns the environment of app@branch, or nil: the namespace
// annotated with the branch, else one without the annotation whose record
// names the branch (namespaces made by older versions).
func (c *clusterCache) env(app, branch string) *envRecord {
	idx := c.objects[schema.GroupKind{Kind: "Namespace"}].GetIndexer()
	for _, b := range []string{branch, ""} {
		objs, err := idx.ByIndex(indexAppBranch, appBranchKey(app, b))
		if err != nil {
			return nil
		}
		for _, o := range objs {
			if rec := c.record(o); rec != nil && rec.App == app && rec.Branch == branch {
				return rec
			}
		}
	}
	return nil
}

// envOfNamespace returns the environment living in ns, or nil.
func (c *clusterCache) envOfNamespace(ns string) *envRecord {
	o, ok := c.namespace(ns)
	if !ok {
		return nil
	}
	return c.record(o)
}

// namespace returns arbor's namespace ns from the cache (any install's).
func (c *clusterCache) namespace(ns string) (any, bool) {
	o, ok, err := c.objects[schema.GroupKind{Kind: "Namespace"}].GetStore().GetByKey(ns)
	return o, err == nil && ok
}

func (c *clusterCache) record(o any) *envRecord {
	m, err := metaOf(o)
	if err != nil {
		return nil
	}
	l := m.GetLabels()
	if l[render.LabelManagedBy] != render.ManagedByValue || l[render.LabelApp] == "" {
		return nil
	}
	install, hasInstall := l[apply.LabelInstall]
	if hasInstall && install != c.install {
		return nil // another install's: never read, adopted, pruned or deleted
	}
	rec := &envRecord{
		Legacy:      !hasInstall,
		Namespace:   m.GetName(),
		App:         l[render.LabelApp],
		EnvID:       l[render.LabelEnv],
		Branch:      m.GetAnnotations()[render.AnnotationBranch],
		Deleting:    m.GetDeletionTimestamp() != nil,
		Keep:        m.GetAnnotations()[render.AnnotationKeep] == "true",
		Annotations: m.GetAnnotations(),
	}
	rec.State = c.state(rec.Namespace)
	if rec.Branch == "" && rec.State != nil {
		rec.Branch = rec.State.Branch
	}
	if rec.Branch == "" {
		return nil // not enough to know which branch it serves; never touched
	}
	return rec
}

func (c *clusterCache) state(ns string) *envState {
	o, ok, err := c.states.GetStore().GetByKey(ns + "/" + StateConfigMap)
	if err != nil || !ok {
		return nil
	}
	st, err := c.decoded.get(o.(*corev1.ConfigMap))
	if err != nil {
		c.log.Warn("unreadable environment state", "namespace", ns, "error", err)
		return nil
	}
	return st
}

// allStates returns every environment record in the cache.
func (c *clusterCache) allStates() []*envState {
	var out []*envState
	for _, o := range c.states.GetStore().List() {
		st, err := c.decoded.get(o.(*corev1.ConfigMap))
		if err != nil || (st.Install != "" && st.Install != c.install) {
			continue // unreadable, or another install's record
		}
		out = append(out, st)
	}
	return out
}

// decodedStates keeps each record decoded once per resourceVersion: every
// reconcile and status read looks records up, and decoding JSON each time
// cost more than everything else the daemon does at a thousand environments.
type decodedStates struct {
	mu sync.Mutex
	m  map[string]decodedState // by namespace
}

type decodedState struct {
	resourceVersion string
	st              *envState
	err             error
}

// put decodes cm (with its data) and keeps the result for its version.
func (d *decodedStates) put(cm *corev1.ConfigMap) decodedState {
	st, err := decodeState(cm)
	e := decodedState{resourceVersion: cm.ResourceVersion, st: st, err: err}
	d.mu.Lock()
	d.m[cm.Namespace] = e
	d.mu.Unlock()
	return e
}

// get returns a copy of cm's decoded record; the copy's fields may be
// replaced but the slices and maps it shares must not be changed in place.
// A cached cm has no data left (slimRecord): its record was decoded as it
// came in.
func (d *decodedStates) get(cm *corev1.ConfigMap) (*envState, error) {
	d.mu.Lock()
	e, ok := d.m[cm.Namespace]
	d.mu.Unlock()
	if !ok || e.resourceVersion != cm.ResourceVersion || cm.ResourceVersion == "" {
		switch {
		case ok && cm.Data == nil && cm.BinaryData == nil:
			// The informer transforms (decodes) a version as it queues it
			// and stores it after: the store lags, and the decoded record
			// is of a newer version of this same record. (Read as
			// unreadable, it made an environment look recordless for a
			// moment under load.)
		case cm.Data == nil && cm.BinaryData == nil:
			return nil, fmt.Errorf("%s: the record at version %s was not decoded", cm.Namespace, cm.ResourceVersion)
		default:
			e = d.put(cm)
		}
	}
	if e.err != nil {
		return nil, e.err
	}
	cp := *e.st
	return &cp, nil
}

// forget drops the decoded record of ns at version rv (a record already
// replaced by a newer one is kept).
func (d *decodedStates) forget(ns, rv string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[ns]; ok && e.resourceVersion == rv {
		delete(d.m, ns)
	}
}

// fingerprint returns the object's generation (g), or its resourceVersion
// (r) for kinds whose generation does not move; ok is false when the object
// is not in the cache or its kind is not watched.
func (c *clusterCache) fingerprint(ref render.ObjectRef) (fp string, watched, ok bool) {
	if _, watched := c.objects[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}]; !watched {
		return "", false, false
	}
	m, ok := c.object(ref)
	if !ok {
		return "", true, false
	}
	if m.GetLabels()[render.LabelManagedBy] != render.ManagedByValue {
		return "", true, false
	}
	if g := m.GetGeneration(); g > 0 {
		return "g" + strconv.FormatInt(g, 10), true, true
	}
	return "r" + m.GetResourceVersion(), true, true
}

// appliedSince reports whether the cached object shows a server-side apply
// by arbor at or after t (managedFields times have one-second resolution).
func (c *clusterCache) appliedSince(ref render.ObjectRef, t time.Time) bool {
	m, ok := c.object(ref)
	if !ok {
		return false
	}
	for _, f := range m.GetManagedFields() {
		if f.Manager == fieldManager && f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == "" &&
			f.Time != nil && !f.Time.Time.Before(t) {
			return true
		}
	}
	return false
}

// controllerManager is the field manager of Kubernetes' own controllers,
// which write to arbor's objects as part of their job (the Deployment
// controller's revision annotation): not a hand edit.
const controllerManager = "kube-controller-manager"

// writtenByOthersSince reports whether another field manager wrote the
// object (not its status) at or after t.
func (c *clusterCache) writtenByOthersSince(ref render.ObjectRef, t time.Time) bool {
	m, ok := c.object(ref)
	if !ok {
		return false
	}
	for _, f := range m.GetManagedFields() {
		if f.Manager != fieldManager && f.Manager != controllerManager && f.Subresource == "" &&
			f.Time != nil && !f.Time.Time.Before(t) {
			return true
		}
	}
	return false
}

// object returns the cached metadata of ref.
func (c *clusterCache) object(ref render.ObjectRef) (metav1.Object, bool) {
	inf, watched := c.objects[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}]
	if !watched {
		return nil, false
	}
	key := ref.Name
	if ref.Namespace != "" {
		key = ref.Namespace + "/" + ref.Name
	}
	o, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	m, err := metaOf(o)
	return m, err == nil
}

// watchesAll reports whether every object is of a kind the cache watches.
func (c *clusterCache) watchesAll(objs []*unstructured.Unstructured) bool {
	for _, o := range objs {
		if _, ok := c.objects[o.GroupVersionKind().GroupKind()]; !ok {
			return false
		}
	}
	return true
}

// objectsIn returns arbor's objects of watched kinds in namespace ns, and
// ns itself: the inventory of an environment that has no record.
func (c *clusterCache) objectsIn(ns string) []render.ObjectRef {
	out := []render.ObjectRef{{Kind: "Namespace", Name: ns}}
	for gk, inf := range c.objects {
		if gk.Kind == "Namespace" && gk.Group == "" {
			continue
		}
		for _, o := range inf.GetStore().List() { // no index by namespace: this runs rarely
			m, err := metaOf(o)
			if err == nil && m.GetNamespace() == ns && m.GetLabels()[render.LabelManagedBy] == render.ManagedByValue {
				out = append(out, render.ObjectRef{Group: gk.Group, Kind: gk.Kind, Namespace: ns, Name: m.GetName()})
			}
		}
	}
	return out
}

func refKey(r render.ObjectRef) string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// namespaceLabels returns the labels of namespace ns as the cache has them
// (arbor's namespaces only, of any install).
func (c *clusterCache) namespaceLabels(ns string) (map[string]string, bool) {
	o, ok := c.namespace(ns)
	if !ok {
		return nil, false
	}
	m, err := metaOf(o)
	if err != nil {
		return nil, false
	}
	return m.GetLabels(), true
}
