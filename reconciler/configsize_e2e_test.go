package reconciler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// TestDaemonConfigSizeLimit: an app's max_config_size bounds the
// .release.yaml the daemon reads; a larger one is an invalid configuration
// naming the file and the limit, and raising the limit reads it.
func TestDaemonConfigSizeLimit(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp+"# "+strings.Repeat("padding ", 300)+"\n") // about 2.4 KiB
	body := "apps:\n- {name: " + app + ", repo: " + r.dir + ", poll_interval: 1h, max_config_size: LIMIT}\ndefaults: {domain: test.local}\n"
	d := startDaemon(t, newConfig(t, own, strings.Replace(body, "LIMIT", "1Ki", 1)))
	st := d.waitPhase(app, "main", reconciler.PhaseInvalid, 60*time.Second)
	if !strings.Contains(st.LastError, "file too large") || !strings.Contains(st.LastError, "1 KiB") {
		t.Errorf("the refused configuration says %q, want the file too large and the limit", st.LastError)
	}
	d.stop()
	d = startDaemon(t, newConfig(t, own, strings.Replace(body, "LIMIT", "4Ki", 1)))
	d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
}
