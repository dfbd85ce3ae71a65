package schema

import "strings"

// ObjectName is the Kubernetes object name arbor derives from a service, job
// or cron job name. Release accepts names Kubernetes cannot take
// (frontendTests, db_migrate): they are lower-cased and "_" becomes "-", so
// the name stays recognisable and stable across renders. The original name
// is kept where users see it (labels, workflow tasks, status); variable
// names such as FRONTENDTESTS_INGRESS_URL come out the same from either
// form. Validation refuses a name whose derived form is still not a DNS
// label, and two names that derive the same object name.
func ObjectName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}
