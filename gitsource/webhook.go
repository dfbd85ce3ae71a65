package gitsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/arbordev/arbor/internal/sigcheck"
)

// Webhook providers: the last path segment of the endpoint and the provider
// label of arbor_webhook_deliveries_total.
const (
	ProviderGitHub  = "github"
	ProviderGitLab  = "gitlab"
	ProviderGitea   = "gitea"
	ProviderGeneric = "generic"
)

// Webhook delivery results: the result label of
// arbor_webhook_deliveries_total and the argument of OnDelivery.
const (
	ResultTriggered    = "triggered"    // verified; the repository's apps will refresh (202)
	ResultNoMatch      = "no_match"     // verified, but no configured app has this repository (404)
	ResultUnauthorized = "unauthorized" // signature or token missing or wrong, or no secret configured (401)
	ResultBadRequest   = "bad_request"  // not a POST, or a verified body that is not valid JSON (405/400)
	ResultTooLarge     = "too_large"    // body over the size limit (413)
)

// DefaultMaxBodyBytes bounds a webhook body when WebhookOptions leaves it 0.
const DefaultMaxBodyBytes = 2 << 20

// Header names arbor reads.
const (
	headerHubSignature   = "X-Hub-Signature-256" // GitHub; also sent by Gitea
	headerGiteaSignature = "X-Gitea-Signature"
	headerGitLabToken    = "X-Gitlab-Token"
	headerArborSignature = "X-Arbor-Signature-256"
)

// WebhookOptions configures the webhook receiver.
type WebhookOptions struct {
	// Secret verifies deliveries of every provider without its own entry in
	// ProviderSecrets: the HMAC key (GitHub, Gitea, generic) or the token
	// (GitLab, generic bearer). A provider with no secret rejects everything.
	Secret []byte
	// ProviderSecrets overrides Secret per provider (keys: Provider*).
	ProviderSecrets map[string][]byte
	// MaxBodyBytes bounds the body read; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Metrics counts deliveries by provider and result; nil counts nothing.
	Metrics *Metrics
	// OnDelivery, if set, is called once per delivery to a known provider
	// with its result (Result*), after any trigger has fired.
	OnDelivery func(provider, result string)
	// Logger receives one line per rejected delivery; nil discards them.
	Logger *slog.Logger
}

// Webhooks is the http.Handler for POST /hooks/{github,gitlab,gitea,generic}.
// Mount it at "/hooks/" (it reads the provider from the path's last
// segment). A delivery is verified before its body is even parsed; a
// verified delivery fires the Trigger of every Source it names, and nothing
// else. Safe for concurrent use.
type Webhooks struct {
	opts WebhookOptions
	log  *slog.Logger

	mu      sync.RWMutex
	sources []*Source
}

// NewWebhooks returns a receiver routing to no Source yet; see SetSources.
func NewWebhooks(opts WebhookOptions) *Webhooks {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhooks{opts: opts, log: log}
}

// SetSources replaces the Sources deliveries are routed to (call it again
// when the daemon's configuration changes).
func (h *Webhooks) SetSources(sources []*Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sources = slices.Clone(sources)
}

// ServeHTTP verifies a delivery and fires the Triggers of the Sources it
// names.
func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	provider := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	switch provider {
	case ProviderGitHub, ProviderGitLab, ProviderGitea, ProviderGeneric:
	default:
		http.NotFound(w, r)
		return
	}
	status, result, msg := h.handle(provider, r)
	h.opts.Metrics.delivery(provider, result)
	if h.opts.OnDelivery != nil {
		h.opts.OnDelivery(provider, result)
	}
	if status >= 400 {
		h.log.Info("webhook rejected", "provider", provider, "result", result, "reason", msg, "remote", r.RemoteAddr)
	}
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// handle runs one delivery: method, secret, body, verification, routing.
func (h *Webhooks) handle(provider string, r *http.Request) (status int, result, msg string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, ResultBadRequest, "only POST is accepted"
	}
	secret := h.secret(provider)
	if len(secret) == 0 {
		return http.StatusUnauthorized, ResultUnauthorized, "no webhook secret is configured for " + provider
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1))
	if err != nil {
		return http.StatusBadRequest, ResultBadRequest, "cannot read body"
	}
	if int64(len(body)) > h.opts.MaxBodyBytes {
		return http.StatusRequestEntityTooLarge, ResultTooLarge, fmt.Sprintf("body exceeds %d bytes", h.opts.MaxBodyBytes)
	}
	if !verify(provider, r.Header, body, secret) {
		return http.StatusUnauthorized, ResultUnauthorized, "signature or token missing or wrong"
	}
	ref, err := parseDelivery(provider, r, body)
	if err != nil {
		return http.StatusBadRequest, ResultBadRequest, err.Error()
	}
	targets := h.route(ref)
	if len(targets) == 0 {
		return http.StatusNotFound, ResultNoMatch, "no configured app uses this repository"
	}
	names := make([]string, len(targets))
	for i, s := range targets {
		s.Trigger().Fire()
		names[i] = s.App()
	}
	return http.StatusAccepted, ResultTriggered, "refreshing " + strings.Join(names, ", ")
}

func (h *Webhooks) secret(provider string) []byte {
	if s, ok := h.opts.ProviderSecrets[provider]; ok {
		return s
	}
	return h.opts.Secret
}

// verify checks the provider's signature or token in constant time.
func verify(provider string, hdr http.Header, body, secret []byte) bool {
	switch provider {
	case ProviderGitHub:
		return sigcheck.HMAC(hdr.Get(headerHubSignature), "sha256=", body, secret)
	case ProviderGitea:
		if sig := hdr.Get(headerGiteaSignature); sig != "" {
			return sigcheck.HMAC(sig, "", body, secret)
		}
		return sigcheck.HMAC(hdr.Get(headerHubSignature), "sha256=", body, secret)
	case ProviderGitLab:
		return sigcheck.Token(hdr.Get(headerGitLabToken), secret)
	case ProviderGeneric:
		if sig := hdr.Get(headerArborSignature); sig != "" {
			return sigcheck.HMAC(sig, "sha256=", body, secret)
		}
		token, ok := strings.CutPrefix(hdr.Get("Authorization"), "Bearer ")
		return ok && sigcheck.Token(token, secret)
	}
	return false
}

// repoRef is what a delivery says about the repository it concerns.
type repoRef struct {
	apps      []string // explicit app names (?app=, generic "app")
	urls      []string // clone, ssh and web URLs
	fullNames []string // owner/name or group/sub/name
}

// payload holds the fields arbor reads from GitHub, Gitea, GitLab and
// generic bodies; everything else is ignored.
type payload struct {
	Repository json.RawMessage `json:"repository"` // object (forges) or, in generic bodies, a URL string
	Project    struct {
		GitHTTPURL        string `json:"git_http_url"`
		GitSSHURL         string `json:"git_ssh_url"`
		WebURL            string `json:"web_url"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	App string `json:"app"`
}

type forgeRepo struct {
	CloneURL   string `json:"clone_url"`
	SSHURL     string `json:"ssh_url"`
	GitURL     string `json:"git_url"`
	HTMLURL    string `json:"html_url"`
	FullName   string `json:"full_name"`
	GitHTTPURL string `json:"git_http_url"`
	GitSSHURL  string `json:"git_ssh_url"`
	Homepage   string `json:"homepage"`
	URL        string `json:"url"`
}

// parseDelivery extracts the repository a verified delivery names.
func parseDelivery(provider string, r *http.Request, body []byte) (repoRef, error) {
	var ref repoRef
	for _, v := range r.URL.Query()["app"] {
		ref.apps = append(ref.apps, splitList(v)...)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if len(ref.apps) == 0 {
			return ref, errors.New("empty body and no ?app= query")
		}
		return ref, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		// GitHub's and Gitea's form content type: the JSON is in "payload".
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			return ref, errors.New("form body has no payload field")
		}
		body = []byte(form.Get("payload"))
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return ref, fmt.Errorf("body is not a JSON object: %v", err)
	}
	ref.urls = append(ref.urls, p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL)
	ref.fullNames = append(ref.fullNames, p.Project.PathWithNamespace)
	if err := addRepository(&ref, p.Repository, provider == ProviderGeneric); err != nil {
		return ref, err
	}
	if provider == ProviderGeneric && p.App != "" {
		ref.apps = append(ref.apps, p.App)
	}
	return ref, nil
}

// addRepository reads the "repository" member: an object in forge payloads,
// or (generic only) a URL or full name string.
func addRepository(ref *repoRef, raw json.RawMessage, generic bool) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if raw[0] == '"' && generic {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("repository: %v", err)
		}
		ref.urls = append(ref.urls, s)
		ref.fullNames = append(ref.fullNames, s)
		return nil
	}
	var fr forgeRepo
	if err := json.Unmarshal(raw, &fr); err != nil {
		return fmt.Errorf("repository: %v", err)
	}
	ref.urls = append(ref.urls, fr.CloneURL, fr.SSHURL, fr.GitURL, fr.HTMLURL, fr.GitHTTPURL, fr.GitSSHURL, fr.Homepage, fr.URL)
	ref.fullNames = append(ref.fullNames, fr.FullName)
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// route returns the Sources a delivery concerns: those named by app when
// the delivery names apps, else those whose repository matches one of its
// URLs or full names.
func (h *Webhooks) route(ref repoRef) []*Source {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*Source
	for _, s := range h.sources {
		if ref.concerns(s) {
			out = append(out, s)
		}
	}
	return out
}

func (ref repoRef) concerns(s *Source) bool {
	if len(ref.apps) > 0 {
		return slices.Contains(ref.apps, s.App())
	}
	for _, u := range ref.urls {
		if s.loc.matchesURL(u) {
			return true
		}
	}
	for _, n := range ref.fullNames {
		if s.loc.matchesFullName(n) {
			return true
		}
	}
	return false
}
