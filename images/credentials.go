package images

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
)

// maxDockerConfigSize bounds the docker-config bytes arbor parses.
const maxDockerConfigSize = 1 << 20

// Credentials are registry logins read from a docker-config file (the
// `.dockerconfigjson` key of a kubernetes.io/dockerconfigjson Secret), by
// registry host. Only the `auths` map is read: credential helpers and stores
// name programs to run, and a Secret's bytes never make arbor run a program.
type Credentials struct {
	byHost map[string]authn.AuthConfig
}

// ParseDockerConfig reads the `.dockerconfigjson` bytes of a Secret. Empty
// bytes are no credentials (anonymous access). The error never quotes the
// bytes.
func ParseDockerConfig(data []byte) (*Credentials, error) {
	c := &Credentials{byHost: map[string]authn.AuthConfig{}}
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if len(data) > maxDockerConfigSize {
		return nil, fmt.Errorf("docker config: %d bytes, more than %d", len(data), maxDockerConfigSize)
	}
	var file struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		// json's syntax errors quote no input, but type errors may: say only where.
		return nil, fmt.Errorf("docker config: not a docker config JSON object (%T)", err)
	}
	for key, a := range file.Auths {
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("docker config: auths[%s].auth: not base64", key)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("docker config: auths[%s].auth: not user:password", key)
			}
			cfg.Username, cfg.Password = user, pass
		}
		c.byHost[registryHost(key)] = cfg
	}
	return c, nil
}

// registryHost is the host a docker-config key or a registry address names,
// with the many spellings of Docker Hub made one.
func registryHost(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return dockerHub
	}
	return s
}

func (c *Credentials) lookup(host string) authn.AuthConfig {
	if c == nil {
		return authn.AuthConfig{}
	}
	return c.byHost[registryHost(host)]
}

// Resolve implements authn.Keychain for go-containerregistry's lookups.
func (c *Credentials) Resolve(r authn.Resource) (authn.Authenticator, error) {
	cfg := c.lookup(r.RegistryStr())
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}

// secrets returns every credential value, for scrubbing error messages.
func (c *Credentials) secrets() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, a := range c.byHost {
		for _, v := range []string{a.Password, a.IdentityToken, a.RegistryToken, a.Auth} {
			if v != "" {
				out = append(out, v)
			}
		}
		if a.Username != "" && a.Password != "" {
			out = append(out, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
		}
	}
	return out
}

// attachable gives BuildKit the credentials for pushing and for pulling base
// images, through the build's session: they never enter the build itself.
func (c *Credentials) attachable() session.Attachable {
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: func(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			a := c.lookup(host)
			return types.AuthConfig{
				Username:      a.Username,
				Password:      a.Password,
				IdentityToken: a.IdentityToken,
				RegistryToken: a.RegistryToken,
				ServerAddress: host,
			}, nil
		},
	})
}
