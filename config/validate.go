package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/internal/redact"
)

func (c *Config) setDefaults() {
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.Path == "" {
			a.Path = DefaultPath
		}
		if a.PollInterval.Duration == 0 {
			a.PollInterval.Duration = DefaultPollInterval
		}
		if a.Cluster == "" {
			a.Cluster = DefaultCluster
		}
		if a.GitTimeout.Duration == 0 {
			a.GitTimeout.Duration = DefaultGitTimeout
		}
		if a.GitMaxFetchSize.Bytes == 0 {
			a.GitMaxFetchSize.Bytes = DefaultGitMaxFetchSize
		}
		if a.PodSecurity == "" {
			a.PodSecurity = DefaultPodSecurity
		}
		a.Kustomize.setDefaults()
	}
	if c.Server.Listen == "" {
		c.Server.Listen = DefaultListen
	}
	if c.Server.WakeListen == "" {
		c.Server.WakeListen = DefaultWakeListen
	}
	if c.Server.WakeService == "" {
		c.Server.WakeService = DefaultWakeService
	}
	c.Images.setDefaults(c.Defaults)
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Install == "" {
		c.Install = c.Namespace
	}
	if c.ServiceAccount == "" {
		c.ServiceAccount = DefaultServiceAccount
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Clusters == nil {
		c.Clusters = map[string]Cluster{}
	}
	if _, ok := c.Clusters[DefaultCluster]; !ok {
		c.Clusters[DefaultCluster] = Cluster{}
	}
}

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	scpLike      = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)
)

// maxAppName leaves room in a 63-character namespace for "-" and an env id.
const maxAppName = 20

// validate checks meaning once decoding succeeded; relative paths become
// relative to the configuration file.
func (d *decoder) validate(c *Config) {
	base := filepath.Dir(d.file)
	if len(c.Apps) == 0 {
		d.fail("apps", "at least one app is required")
	}
	names := map[string]int{}
	for i := range c.Apps {
		field := fmt.Sprintf("apps[%d]", i)
		d.app(&c.Apps[i], field, base, c)
		if j, dup := names[c.Apps[i].Name]; dup && c.Apps[i].Name != "" {
			d.fail(field+".name", "%q is already the name of apps[%d]", c.Apps[i].Name, j)
		}
		names[c.Apps[i].Name] = i
	}
	d.defaults(c.Defaults)
	for name, cl := range c.Clusters {
		field := "clusters." + name
		if !dnsLabel.MatchString(name) {
			d.fail(field, "cluster name must be a DNS label (lower-case letters, digits and '-')")
		}
		if cl.Kubeconfig != "" && cl.KubeconfigSecret != "" {
			d.fail(field, "kubeconfig and kubeconfig_secret: give one")
		}
		if cl.KubeconfigSecret != "" && (!dnsSubdomain.MatchString(cl.KubeconfigSecret) || name == DefaultCluster) {
			d.fail(field+".kubeconfig_secret", "%q: a Secret's name in arbor's namespace, for a cluster other than %q (the default cluster holds that namespace)", cl.KubeconfigSecret, DefaultCluster)
		}
		if cl.Kubeconfig != "" {
			cl.Kubeconfig = d.file0(base, cl.Kubeconfig, field+".kubeconfig")
		}
		d.traffic(&cl.Traffic, field+".traffic")
		c.Clusters[name] = cl
	}
	d.server(&c.Server, base)
	d.images(&c.Images, base)
	if !dnsLabel.MatchString(c.Namespace) || len(c.Namespace) > 63 {
		d.fail("namespace", "%q is not a DNS label", c.Namespace)
	}
	for i, h := range c.ChartPlainHTTPHosts {
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			d.fail(fmt.Sprintf("chart_plain_http_hosts[%d]", i), "%q is not host:port", h)
		}
	}
	if c.Concurrency < 1 {
		d.fail("concurrency", "must be at least 1, got %d", c.Concurrency)
	}
}

func (d *decoder) app(a *App, field, base string, c *Config) {
	switch {
	case a.Name == "":
		d.fail(field+".name", "required")
	case len(a.Name) > maxAppName || !dnsLabel.MatchString(a.Name):
		d.fail(field+".name", "%q must be a DNS label of at most %d characters (lower-case letters, digits and '-')", a.Name, maxAppName)
	}
	remote := d.repo(a, field, base)
	if p := a.Path; path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		d.fail(field+".path", "%q must be a clean path inside the repository, like .release.yaml", p)
	}
	if a.PollInterval.Duration < time.Second {
		d.fail(field+".poll_interval", "must be at least 1s, got %s", a.PollInterval.Duration)
	}
	d.auth(&a.Auth, field+".auth", base, a.Repo, remote)
	if a.SecretsFrom != "" && (len(a.SecretsFrom) > 253 || !dnsSubdomain.MatchString(a.SecretsFrom)) {
		d.fail(field+".secrets_from", "%q is not a valid Secret name", a.SecretsFrom)
	}
	if _, ok := c.Clusters[a.Cluster]; !ok {
		d.fail(field+".cluster", "no cluster named %q under clusters", a.Cluster)
	}
	d.limits(a, field)
	d.pause(&a.Pause, field+".pause")
	d.guards(field, a.ResourceQuota, a.LimitRange, a.MaxEnvironments)
	d.forge(&a.Forge, a.Repo, field+".forge", base, remote)
	switch a.Environments {
	case "":
		a.Environments = EnvironmentsBranches
	case EnvironmentsBranches:
	case EnvironmentsPullRequests:
		if !a.Forge.Enabled() {
			d.fail(field+".environments", "pull_requests needs the app's forge: (which lists the pull requests)")
		}
	default:
		d.fail(field+".environments", "%q: use %s or %s", a.Environments, EnvironmentsBranches, EnvironmentsPullRequests)
	}
}

// forge checks an app's forge and fills what it leaves to be guessed: the
// type from the repository's host, the address and the repository path
// from its address.
func (d *decoder) forge(f *Forge, repo, field, base string, remote bool) {
	if !f.Enabled() {
		return
	}
	if !remote {
		d.fail(field, "a forge needs a remote repository (https, ssh or user@host:path)")
		return
	}
	if f.TokenFile == "" {
		d.fail(field+".token_file", "required: the forge's API token")
	}
	f.TokenFile = d.file0(base, f.TokenFile, field+".token_file")
	if f.URL != "" {
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.fail(field+".url", "%q must be an http(s) address like https://git.example.com", redact.URL(f.URL))
			return
		} else if u.User != nil {
			d.fail(field+".url", "%q holds credentials: put the token in token_file", redact.URL(f.URL))
			return
		}
	}
	switch {
	case f.Type == "":
		t, ok := forge.GuessTypeFromURL(repo)
		if !ok {
			d.fail(field+".type", "cannot tell the forge from %s: set type to %s", redact.URL(repo), forgeTypes())
			return
		}
		f.Type = string(t)
	case !slices.Contains(forge.Types, forge.Type(f.Type)):
		d.fail(field+".type", "%q is not a forge arbor knows: use %s", f.Type, forgeTypes())
		return
	}
	web, path, err := forge.RepoFromURL(repo, f.URL)
	if err != nil {
		d.fail(field, "%v", err)
		return
	}
	f.URL, f.Repo = web, path
}

func forgeTypes() string {
	names := make([]string, len(forge.Types))
	for i, t := range forge.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// limits checks the per-app bounds on git and the pod security level.
func (d *decoder) limits(a *App, field string) {
	if a.GitTimeout.Duration < time.Second {
		d.fail(field+".git_timeout", "must be at least 1s, got %s", a.GitTimeout.Duration)
	}
	if a.MaxExtension.Duration < 0 {
		d.fail(field+".max_extension", "must not be negative, got %s", a.MaxExtension.Duration)
	}
	if a.GitMaxFetchSize.Bytes < 1<<20 {
		d.fail(field+".git_max_fetch_size", "must be at least 1Mi, got %d bytes", a.GitMaxFetchSize.Bytes)
	}
	k := a.Kustomize
	if k.MaxFileSize.Bytes < 1<<10 {
		d.fail(field+".kustomize.max_file_size", "must be at least 1Ki, got %d bytes", k.MaxFileSize.Bytes)
	}
	if k.MaxTotalSize.Bytes < k.MaxFileSize.Bytes {
		d.fail(field+".kustomize.max_total_size", "must be at least max_file_size (%d bytes), got %d bytes", k.MaxFileSize.Bytes, k.MaxTotalSize.Bytes)
	}
	if k.Timeout.Duration < time.Second {
		d.fail(field+".kustomize.timeout", "must be at least 1s, got %s", k.Timeout.Duration)
	}
	for i, r := range a.ChartRepositories {
		if !strings.HasPrefix(r, "https://") && !strings.HasPrefix(r, "http://") && !strings.HasPrefix(r, "oci://") {
			d.fail(fmt.Sprintf("%s.chart_repositories[%d]", field, i), "%q is not an https:// chart repository or an oci:// reference", r)
		}
	}
	if !slices.Contains(PodSecurityLevels, a.PodSecurity) {
		d.fail(field+".pod_security", "%q is not a Pod Security Standard: use %s", a.PodSecurity, strings.Join(PodSecurityLevels, ", "))
	}
}

func (k *KustomizeLimits) setDefaults() {
	if k.MaxFileSize.Bytes == 0 {
		k.MaxFileSize.Bytes = DefaultKustomizeMaxFileSize
	}
	if k.MaxTotalSize.Bytes == 0 {
		k.MaxTotalSize.Bytes = DefaultKustomizeMaxTotalSize
	}
	if k.Timeout.Duration == 0 {
		k.Timeout.Duration = DefaultKustomizeTimeout
	}
}

// repo checks the repository and reports whether it is remote. A local path is
// made absolute and must be a directory.
func (d *decoder) repo(a *App, field, base string) bool {
	field += ".repo"
	if a.Repo == "" {
		d.fail(field, "required: a URL or a local path")
		return false
	}
	if scpLike.MatchString(a.Repo) {
		return true
	}
	if u, err := url.Parse(a.Repo); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		switch u.Scheme {
		case "https", "http", "ssh", "git":
			if u.Host == "" {
				d.fail(field, "%q has no host", a.Repo)
			}
			return true
		case "file":
			a.Repo = u.Path
		default:
			d.fail(field, "unsupported scheme %q: use https, http, ssh, git, file or a local path", u.Scheme)
			return true
		}
	}
	p := a.Repo
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		d.fail(field, "local repository %s: %v", p, unwrapPathError(err))
	case !st.IsDir():
		d.fail(field, "local repository %s is not a directory", p)
	}
	a.Repo = p
	return false
}

func (d *decoder) auth(a *Auth, field, base, repo string, remote bool) {
	if a.Empty() {
		return
	}
	if !remote {
		d.fail(field, "a local repository takes no credentials")
		return
	}
	ssh := strings.HasPrefix(repo, "ssh://") || scpLike.MatchString(repo)
	https := a.UsernameFile != "" || a.PasswordFile != "" || a.TokenFile != ""
	switch {
	case ssh && https:
		d.fail(field, "an ssh repository takes ssh_key_file and known_hosts_file, not username, password or token files")
	case !ssh && (a.SSHKeyFile != "" || a.KnownHostsFile != "" || a.SSHPassphraseFile != ""):
		d.fail(field, "ssh_key_file and known_hosts_file need an ssh repository (ssh:// or user@host:path)")
	case a.TokenFile != "" && a.PasswordFile != "":
		d.fail(field+".token_file", "give token_file or password_file, not both")
	case a.PasswordFile != "" && a.UsernameFile == "":
		d.fail(field+".username_file", "required with password_file")
	case a.UsernameFile != "" && a.PasswordFile == "" && a.TokenFile == "":
		d.fail(field+".password_file", "required with username_file (or give token_file)")
	case a.SSHKeyFile != "" && a.KnownHostsFile == "":
		d.fail(field+".known_hosts_file", "required with ssh_key_file: arbor does not trust unknown host keys")
	}
	a.UsernameFile = d.file0(base, a.UsernameFile, field+".username_file")
	a.PasswordFile = d.file0(base, a.PasswordFile, field+".password_file")
	a.TokenFile = d.file0(base, a.TokenFile, field+".token_file")
	a.SSHKeyFile = d.file0(base, a.SSHKeyFile, field+".ssh_key_file")
	a.KnownHostsFile = d.file0(base, a.KnownHostsFile, field+".known_hosts_file")
	a.SSHPassphraseFile = d.file0(base, a.SSHPassphraseFile, field+".ssh_passphrase_file")
}

// file0 makes p absolute against base and checks that it is a readable file;
// "" stays "".
func (d *decoder) file0(base, p, field string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		d.fail(field, "%s: %v", p, unwrapPathError(err))
	case st.IsDir():
		d.fail(field, "%s is a directory, not a file", p)
	}
	return p
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (d *decoder) defaults(df Defaults) {
	if df.Domain != "" && !dnsSubdomain.MatchString(strings.ToLower(df.Domain)) {
		d.fail("defaults.domain", "%q is not a DNS name", df.Domain)
	}
	if df.IngressClass != "" && !dnsSubdomain.MatchString(df.IngressClass) {
		d.fail("defaults.ingress_class", "%q is not a valid IngressClass name", df.IngressClass)
	}
	for k, v := range df.StorageClasses {
		if !dnsSubdomain.MatchString(v) {
			d.fail("defaults.storage_classes."+k, "%q is not a valid StorageClass name", v)
		}
	}
	d.guards("defaults", df.ResourceQuota, df.LimitRange, df.MaxEnvironments)
}

func (d *decoder) server(s *Server, base string) {
	if _, port, err := net.SplitHostPort(s.Listen); err != nil || port == "" {
		d.fail("server.listen", "%q must be host:port or :port, like :8080", s.Listen)
	}
	if s.WakeListen != WakeOff {
		if _, port, err := net.SplitHostPort(s.WakeListen); err != nil || port == "" {
			d.fail("server.wake_listen", "%q must be host:port, :port or off, like :8081", s.WakeListen)
		} else if s.WakeListen == s.Listen {
			d.fail("server.wake_listen", "%q is server.listen's too: the waking endpoint needs a listener of its own", s.WakeListen)
		}
	}
	if !dnsLabel.MatchString(s.WakeService) {
		d.fail("server.wake_service", "%q is not a Service name", s.WakeService)
	}
	s.WebhookSecretFile = d.file0(base, s.WebhookSecretFile, "server.webhook_secret_file")
	for p, f := range s.WebhookSecretFiles {
		field := "server.webhook_secret_files." + p
		if !slices.Contains(Providers, p) {
			d.fail(field, "unknown provider; use one of %s", strings.Join(Providers, ", "))
			continue
		}
		s.WebhookSecretFiles[p] = d.file0(base, f, field)
	}
}
