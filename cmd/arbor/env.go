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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/reconciler"
)

// envFlags are the flags every arbor env command shares.
type envFlags struct {
	cluster   clusterFlags
	server    string
	token     string
	tokenFile string
	namespace string // arbor's namespace, for the port-forward
	service   string // arbor's Service, for the port-forward
	output    string
}

func newEnvCmd() *cobra.Command {
	f := &envFlags{}
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Look at and act on the daemon's environments through its API",
		Long: `env talks to a running arbor daemon's API (docs/api.md, docs/cli.md).

The daemon is reached at --server (or $ARBOR_SERVER); without one, through a
port-forward to the arbor Service in arbor's namespace of the kubeconfig's cluster,
as kubectl port-forward does. The request carries a bearer token: --token,
--token-file or $ARBOR_TOKEN, else the kubeconfig user's token. The daemon checks it
with the API server and asks RBAC whether its user may do the verb of the command
(list, get, deploy, pause, resume, extend, delete, logs) on the resource environments
of the API group arbor.dev in arbor's namespace.`,
	}
	pf := cmd.PersistentFlags()
	f.cluster.registerOn(pf)
	pf.StringVar(&f.server, "server", "", "the daemon's URL (default: $"+envServer+", else a port-forward to the arbor Service)")
	pf.StringVar(&f.token, "token", "", "bearer token (default: $"+envToken+", else the kubeconfig user's)")
	pf.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token")
	pf.StringVar(&f.namespace, "arbor-namespace", "arbor-system", "arbor's namespace, where its Service is (for the port-forward)")
	pf.StringVar(&f.service, "arbor-service", "arbor", "arbor's Service (for the port-forward)")
	pf.StringVarP(&f.output, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	cmd.AddCommand(
		envListCmd(f), envGetCmd(f), envActionCmd(f, "deploy", "Run the environment's setup or patch again now", "deploy"),
		envActionCmd(f, "pause", "Scale the environment's workloads to zero, keeping its data", "pause"),
		envActionCmd(f, "resume", "Bring a paused environment back as it was", "resume"),
		envExtendCmd(f), envDeleteCmd(f), envLogsCmd(f),
	)
	return cmd
}

// envClient is one conversation with the daemon's API.
type envClient struct {
	base  string
	token string
	http  *http.Client
	close func()
}

// client connects to the daemon as the flags say: --server, $ARBOR_SERVER,
// or a port-forward through the kubeconfig's cluster.
func (f *envFlags) client(ctx context.Context) (*envClient, error) {
	tok, err := readToken(f.token, f.tokenFile)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	c := &envClient{http: &http.Client{}, close: func() {}}
	server := f.server
	if server == "" {
		server = os.Getenv(envServer)
	}
	if server == "" || tok == "" {
		cfg, cfgErr := f.cluster.restConfig()
		if tok == "" && cfgErr == nil {
			tok = kubeconfigToken(cfg)
		}
		if server == "" {
			if cfgErr != nil {
				return nil, fail(exitUsage, fmt.Errorf("no --server and no cluster to port-forward through: %w", cfgErr))
			}
			addr, stop, err := portForward(ctx, cfg, f.namespace, f.service)
			if err != nil {
				return nil, fail(exitNo, err)
			}
			server, c.close = "http://"+addr, stop
		}
	}
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		c.close()
		return nil, fail(exitUsage, fmt.Errorf("--server %q: want a URL such as %s", server, defaultServer))
	}
	c.base, c.token = u.String(), tok
	return c, nil
}

// envPath is the API path of an environment (each name one escaped segment:
// a branch may hold "/").
func envPath(app, env string) string {
	p := "/api/v1/apps/" + url.PathEscape(app) + "/environments"
	if env != "" {
		p += "/" + url.PathEscape(env)
	}
	return p
}

// do sends a request and returns the answer's body, or an error that says
// what a 401, 403 or 404 means.
func (c *envClient) do(ctx context.Context, method, path string, body any, verb string) (io.ReadCloser, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fail(exitNo, fmt.Errorf("%s %s: %w", method, path, err))
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint := "send a token with --token, --token-file or $" + envToken
		if c.token != "" {
			hint = "the token was refused; get a fresh one (kubectl create token ...)"
		}
		return nil, fail(exitNo, fmt.Errorf("%s: unauthorized: %s (%s)", verb, msg, hint))
	case http.StatusForbidden:
		return nil, fail(exitNo, fmt.Errorf("%s: forbidden: %s; a Role in arbor's namespace must allow verbs [%s] on resources [environments] of apiGroups [arbor.dev] (docs/api.md)", verb, msg, verb))
	case http.StatusNotFound:
		return nil, fail(exitNo, fmt.Errorf("%s: not found: %s", verb, msg))
	}
	return nil, fail(exitNo, fmt.Errorf("%s: %s: %s", verb, resp.Status, msg))
}

// getJSON decodes a JSON answer into v (bounded).
func (c *envClient) getJSON(ctx context.Context, method, path string, body any, verb string, v any) error {
	rc, err := c.do(ctx, method, path, body, verb)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 32<<20)).Decode(v); err != nil {
		return fail(exitNo, fmt.Errorf("%s: the daemon's answer is not JSON: %w", verb, err))
	}
	return nil
}

// run connects, runs fn and disconnects, with a bound on the whole.
func (f *envFlags) run(cmd *cobra.Command, timeout time.Duration, fn func(ctx context.Context, c *envClient) error) error {
	if f.output != "" && f.output != "wide" && f.output != "json" && f.output != "yaml" {
		return fail(exitUsage, fmt.Errorf("-o %q: use wide, json or yaml", f.output))
	}
	ctx := cmd.Context()
	if timeout > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c, err := f.client(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	err = fn(ctx, c)
	var ec *exitError
	if err != nil && !errors.As(err, &ec) {
		err = fail(exitNo, err) // a stream cut, an answer not printed: not a usage error
	}
	return err
}

func envListCmd(f *envFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list [APP]",
		Short: "List the environments of an app (of every app without APP)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, time.Minute, func(ctx context.Context, c *envClient) error {
				var apps []string
				if len(args) == 1 {
					apps = args
				} else {
					var all []reconciler.AppStatus
					if err := c.getJSON(ctx, http.MethodGet, "/api/v1/apps", nil, "list", &all); err != nil {
						return err
					}
					for _, a := range all {
						apps = append(apps, a.Name)
					}
				}
				envs := []reconciler.EnvironmentStatus{}
				for _, app := range apps {
					var list []reconciler.EnvironmentStatus
					if err := c.getJSON(ctx, http.MethodGet, envPath(app, ""), nil, "list", &list); err != nil {
						return err
					}
					envs = append(envs, list...)
				}
				return f.print(cmd.OutOrStdout(), envs, envs)
			})
		},
	}
}

func envGetCmd(f *envFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get APP ENV",
		Short: "Show one environment (ENV: its id or branch)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, time.Minute, func(ctx context.Context, c *envClient) error {
				var e reconciler.EnvironmentStatus
				if err := c.getJSON(ctx, http.MethodGet, envPath(args[0], args[1]), nil, "get", &e); err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), e, []reconciler.EnvironmentStatus{e})
			})
		},
	}
}

// envActionCmd is a command that posts an action without a body.
func envActionCmd(f *envFlags, name, short, verb string) *cobra.Command {
	return &cobra.Command{
		Use:   name + " APP ENV",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, time.Minute, func(ctx context.Context, c *envClient) error {
				var v map[string]any
				if err := c.getJSON(ctx, http.MethodPost, envPath(args[0], args[1])+"/"+name, nil, verb, &v); err != nil {
					return err
				}
				return f.printAction(cmd.OutOrStdout(), v, fmt.Sprintf("%s of %s %s requested", name, args[0], args[1]))
			})
		},
	}
}

func envExtendCmd(f *envFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "extend APP ENV DURATION",
		Short: "Keep an expiring environment until DURATION from now (36h, 3d)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, time.Minute, func(ctx context.Context, c *envClient) error {
				var v map[string]any
				body := map[string]string{"duration": args[2]}
				if err := c.getJSON(ctx, http.MethodPost, envPath(args[0], args[1])+"/extend", body, "extend", &v); err != nil {
					return err
				}
				return f.printAction(cmd.OutOrStdout(), v, fmt.Sprintf("%s %s: %v", args[0], args[1], v["message"]))
			})
		},
	}
}

func envDeleteCmd(f *envFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete APP ENV",
		Short: "Delete an environment; its branch's next push creates it again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, time.Minute, func(ctx context.Context, c *envClient) error {
				var v map[string]any
				if err := c.getJSON(ctx, http.MethodDelete, envPath(args[0], args[1]), nil, "delete", &v); err != nil {
					return err
				}
				return f.printAction(cmd.OutOrStdout(), v, fmt.Sprintf("%s %s: %v", args[0], args[1], v["message"]))
			})
		},
	}
}

func envLogsCmd(f *envFlags) *cobra.Command {
	var tail, limit int64
	var follow bool
	var container string
	cmd := &cobra.Command{
		Use:   "logs APP ENV service/NAME|job/NAME|workflow|build",
		Short: "Print the logs of a service's or job's pods, or of the last workflow run or image build",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			what, err := logsPath(args[2])
			if err != nil {
				return fail(exitUsage, err)
			}
			q := url.Values{}
			q.Set("tail", fmt.Sprint(tail))
			q.Set("limitBytes", fmt.Sprint(limit))
			if follow {
				q.Set("follow", "true")
			}
			if container != "" {
				q.Set("container", container)
			}
			timeout := time.Minute
			if follow {
				timeout = 0 // until interrupted, or the daemon's bound
			}
			return f.run(cmd, timeout, func(ctx context.Context, c *envClient) error {
				rc, err := c.do(ctx, http.MethodGet, envPath(args[0], args[1])+"/logs/"+what+"?"+q.Encode(), nil, "logs")
				if err != nil {
					return err
				}
				defer rc.Close()
				// The daemon cuts the answer at limit too; a server that
				// does not (a wrong --server) is not read past it.
				_, err = io.Copy(cmd.OutOrStdout(), io.LimitReader(rc, limit))
				return err
			})
		},
	}
	cmd.Flags().Int64Var(&tail, "tail", 200, "lines from the end of each container's log")
	cmd.Flags().Int64Var(&limit, "limit-bytes", 1<<20, "bytes at most in all")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the newest pod's log as it grows")
	cmd.Flags().StringVarP(&container, "container", "c", "", "only this container of the pods")
	return cmd
}

// logsPath maps the command's third argument to the API's logs path.
func logsPath(arg string) (string, error) {
	kind, name, _ := strings.Cut(arg, "/")
	switch {
	case kind == "workflow" && name == "", kind == "build" && name == "":
		return kind, nil
	case (kind == "service" || kind == "job") && name != "":
		return kind + "s/" + url.PathEscape(name), nil
	}
	return "", fmt.Errorf("%q: want service/NAME, job/NAME, workflow or build", arg)
}

// print writes v as -o asks: JSON, YAML, or a table of envs.
func (f *envFlags) print(w io.Writer, v any, envs []reconciler.EnvironmentStatus) error {
	switch f.output {
	case "json", "yaml":
		return f.printData(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	wide := f.output == "wide"
	head := "APP\tBRANCH\tPHASE\tCOMMIT\tSINCE\tEXPIRES"
	if wide {
		head += "\tENV-ID\tNAMESPACE\tWORKFLOW\tURLS\tMESSAGE"
	}
	fmt.Fprintln(tw, head)
	now := time.Now()
	for _, e := range envs {
		row := []string{e.App, e.Branch, e.Phase, short(e.Commit), since(now, e.LastTransition), expires(now, e)}
		if wide {
			wf := "-"
			if p := e.Workflow; p != nil {
				wf = p.Stage + " " + string(p.Outcome)
			}
			var urls []string
			for _, u := range e.URLs {
				urls = append(urls, u.URL)
			}
			row = append(row, orDash(e.EnvID), orDash(e.Namespace), wf, orDash(strings.Join(urls, ",")), orDash(oneLine(e.LastError)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func (f *envFlags) printAction(w io.Writer, v any, line string) error {
	if f.output == "json" || f.output == "yaml" {
		return f.printData(w, v)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func (f *envFlags) printData(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if f.output == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return orDash(commit)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return human(now.Sub(t))
}

// human shows d as kubectl's AGE does: its two largest units (3d4h, 2h5m, 40s).
func human(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	days, h, m, s := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

func expires(now time.Time, e reconciler.EnvironmentStatus) string {
	switch {
	case !e.ExpiresAt.IsZero() && e.ExpiresAt.After(now):
		return "in " + human(e.ExpiresAt.Sub(now))
	case !e.ExpiresAt.IsZero():
		return "expired"
	case e.ExpiresAfter != "":
		return e.ExpiresAfter + " after the last push"
	}
	return "never"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
