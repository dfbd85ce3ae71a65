package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// envServer names the variable holding the daemon's address for arbor deploy,
// envToken the one holding the bearer token it sends.
const (
	envServer = "ARBOR_SERVER"
	envToken  = "ARBOR_TOKEN"
)

const defaultServer = "http://127.0.0.1:8080"

func newDeployCmd() *cobra.Command {
	var server, token, tokenFile string
	cmd := &cobra.Command{
		Use:   "deploy APP ENV",
		Short: "Ask the daemon to deploy an environment now",
		Long: `deploy asks a running arbor daemon to bring an environment to its branch's newest
commit now: the way to update the environments of an app with auto_deploy: false, and to
retry a setup that failed. ENV is the environment's id or its branch. The daemon records
the request on the environment and its leader acts on it.

The daemon authenticates the request with the Kubernetes API: send a token of a user
or ServiceAccount that RBAC allows the verb deploy on the resource environments of
the API group arbor.dev in arbor's namespace (docs/security.md, "Actions").`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" {
				server = os.Getenv(envServer)
			}
			if server == "" {
				server = defaultServer
			}
			tok, err := readToken(token, tokenFile)
			if err != nil {
				return fail(exitUsage, err)
			}
			return requestDeploy(cmd.Context(), cmd.OutOrStdout(), server, tok, args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the daemon's address (default: $"+envServer+", then "+defaultServer+")")
	cmd.Flags().StringVar(&token, "token", "", "bearer token for the daemon (default: $"+envToken+")")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token")
	return cmd
}

// requestDeploy posts a deploy request to the daemon's API.
func requestDeploy(ctx context.Context, out io.Writer, server, token, app, env string) error {
	base, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return fail(exitUsage, fmt.Errorf("--server %q: want a URL such as %s", server, defaultServer))
	}
	target := strings.TrimRight(base.String(), "/") + envPath(app, env) + "/deploy"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return fail(exitUsage, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("deploy %s %s: %w", app, env, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		code := exitUsage
		if resp.StatusCode == http.StatusNotFound {
			code = exitNo
		}
		return fail(code, fmt.Errorf("deploy %s %s: %s: %s", app, env, resp.Status, msg))
	}
	var ok struct {
		Namespace string `json:"namespace"`
		Requested string `json:"requested"`
	}
	if err := json.Unmarshal(body, &ok); err != nil {
		return fail(exitUsage, errors.New("deploy: the server's answer is not JSON: "+strings.TrimSpace(string(body))))
	}
	fmt.Fprintf(out, "deploy of %s %s requested at %s (namespace %s)\n", app, env, ok.Requested, ok.Namespace)
	return nil
}

// readToken picks the bearer token: --token, else --token-file, else $ARBOR_TOKEN.
func readToken(token, file string) (string, error) {
	if token != "" && file != "" {
		return "", errors.New("--token and --token-file: give one")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		token = string(b)
	}
	if token == "" {
		token = os.Getenv(envToken)
	}
	return strings.TrimSpace(token), nil
}
