package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/images"
)

// wireImages makes the image builder or waiter of the config's images section, and
// the registry's notification receiver (external mode; nil otherwise). The
// registry credentials are read once, here: a rotated Secret takes effect
// when arbor restarts.
func wireImages(ctx context.Context, o WireOptions) (*imageParts, http.Handler, error) {
	im := o.Config.Images
	if im.Build == "" {
		return nil, nil, nil
	}
	creds, err := registryCredentials(ctx, o, im.CredentialsSecret)
	if err != nil {
		return nil, nil, err
	}
	switch im.Build {
	case config.ImagesBuildKit:
		opts := builderOptions(im, creds, o.CacheDir)
		if err := os.MkdirAll(opts.WorkDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("images: build directory: %w", err)
		}
		b, err := images.NewBuilder(opts)
		if err != nil {
			return nil, nil, fmt.Errorf("images: %w", err)
		}
		return &imageParts{mode: im.Build, builder: b}, nil, nil
	default:
		token := ""
		if im.NotificationTokenFile != "" {
			b, err := os.ReadFile(im.NotificationTokenFile)
			if err != nil {
				return nil, nil, fmt.Errorf("images.notification_token_file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		relay := &pushRelay{}
		w := images.NewWaiter(images.WaiterOptions{
			Credentials: creds, PlainHTTP: im.PlainHTTP, Timeout: im.WaitTimeout.Duration,
			MinPoll: im.PollInterval.Duration, MaxPoll: im.MaxPollInterval.Duration, NotificationToken: token,
			OnPush: relay.pushed,
		})
		return &imageParts{mode: im.Build, waiter: w, wakeRepo: w.Wake, relay: relay}, w.NotificationHandler(), nil
	}
}

func builderOptions(im config.Images, creds *images.Credentials, cacheDir string) images.BuilderOptions {
	opts := images.BuilderOptions{
		Addr: im.BuildKitAddr, Registry: im.Registry, PlainHTTP: im.PlainHTTP,
		AllowedBaseRegistries: im.AllowedBaseRegistries, Credentials: creds,
		Timeout: im.BuildTimeout.Duration, MaxContextSize: im.MaxContextSize.Bytes,
		MaxConcurrent: im.MaxConcurrentBuilds, WorkDir: filepath.Join(cacheDir, "builds"),
	}
	if t := im.BuildKitTLS; t.Enabled() {
		opts.TLS = &images.TLSFiles{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile, ServerName: t.ServerName}
	}
	return opts
}

// registryCredentials reads the docker-config Secret in arbor's namespace;
// none named: anonymous access.
func registryCredentials(ctx context.Context, o WireOptions, name string) (*images.Credentials, error) {
	if name == "" {
		return nil, nil
	}
	cs, err := kubernetes.NewForConfig(o.REST)
	if err != nil {
		return nil, err
	}
	sec, err := cs.CoreV1().Secrets(o.Config.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("images.credentials_secret %s/%s: %w", o.Config.Namespace, name, err)
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson {
		return nil, fmt.Errorf("images.credentials_secret %s/%s: type %s, want %s", o.Config.Namespace, name, sec.Type, corev1.SecretTypeDockerConfigJson)
	}
	creds, err := images.ParseDockerConfig(sec.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		return nil, fmt.Errorf("images.credentials_secret %s/%s: %w", o.Config.Namespace, name, err)
	}
	return creds, nil
}

// hooksWith mounts the registry's notifications at /hooks/registry beside
// the git webhooks.
func hooksWith(git, registry http.Handler) http.Handler {
	if registry == nil {
		return git
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/registry", registry)
	mux.Handle("/", git)
	return mux
}
