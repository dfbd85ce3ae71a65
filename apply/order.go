package apply

import "sort"

// kindOrder places each kind in an apply group: a group is applied, with
// bounded concurrency, only after every earlier group succeeded. Kinds not
// listed (custom resources) come last.
var kindOrder = map[string]int{
	"Namespace":                0,
	"CustomResourceDefinition": 1,
	"ServiceAccount":           2, "Role": 2, "ClusterRole": 2, "RoleBinding": 2, "ClusterRoleBinding": 2,
	"ResourceQuota": 2, "LimitRange": 2, "PriorityClass": 2, "NetworkPolicy": 2,
	"ConfigMap": 3, "Secret": 3,
	"StorageClass": 4, "PersistentVolume": 4, "PersistentVolumeClaim": 4,
	"Service": 5, "EndpointSlice": 5, "Endpoints": 5,
	"Deployment": 6, "StatefulSet": 6, "DaemonSet": 6, "ReplicaSet": 6, "Pod": 6, "ReplicationController": 6,
	"CronJob": 6, "HorizontalPodAutoscaler": 6, "PodDisruptionBudget": 6,
	"Job":     7,
	"Ingress": 8, "IngressClass": 8, "HTTPRoute": 8, "Gateway": 8,
}

// lastGroup is the group of kinds not in kindOrder.
const lastGroup = 9

func groupOf(kind string) int {
	if g, ok := kindOrder[kind]; ok {
		return g
	}
	return lastGroup
}

// groups splits items into order groups, in order; empty groups are left out.
// Inside a group items keep the caller's order.
func groups(items []*item) [][]*item {
	sorted := append([]*item(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].group < sorted[j].group })
	var out [][]*item
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].group == sorted[i].group {
			j++
		}
		out = append(out, sorted[i:j])
		i = j
	}
	return out
}
