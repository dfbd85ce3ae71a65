package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arbordev/arbor/internal/redact"
)

// requestTimeout bounds one request when Options.HTTPClient is nil.
const requestTimeout = 30 * time.Second

// client sends the requests of one Forge: the API base, the token header, the
// provider's fixed headers, a bound on answers, and the last rate limit seen.
type client struct {
	kind    Type
	base    string // API base URL, no trailing slash
	token   string
	auth    func(h http.Header, token string)
	headers map[string]string // sent with every request (Accept, API version)
	http    *http.Client
	maxBody int64

	mu   sync.Mutex
	rate RateLimit
}

func newClient(kind Type, base string, o Options, auth func(http.Header, string), headers map[string]string) *client {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: requestTimeout}
	}
	max := o.MaxResponseBytes
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	return &client{kind: kind, base: strings.TrimRight(base, "/"), token: o.Token, auth: auth, headers: headers, http: hc, maxBody: max}
}

// response is one answer, read whole (up to the bound).
type response struct {
	status int
	header http.Header
	body   []byte
}

// Error is a forge's refusal, or a failure to reach it. Its message names the
// forge, the method and the path, and quotes the forge's own message; never
// the token.
type Error struct {
	Forge      Type
	Method     string
	Path       string // escaped path without the query
	StatusCode int    // 0 when no answer came
	Message    string // the forge's message, or the transport's error
	// RetryAfter is how long the forge asked to wait (Retry-After, or the
	// rate limit's reset), 0 when it did not say.
	RetryAfter time.Duration
	// RateLimited is true for an answer that says the rate limit is spent.
	RateLimited bool
	err         error
}

func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("%s %s %s: %s", e.Forge, e.Method, e.Path, e.Message)
	}
	msg := fmt.Sprintf("%s %s %s: %d %s", e.Forge, e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RateLimited {
		msg += " (rate limit spent"
		if e.RetryAfter > 0 {
			msg += fmt.Sprintf("; retry in %s", e.RetryAfter.Round(time.Second))
		}
		msg += ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.err }

// maxMessage bounds the forge's message quoted in an Error.
const maxMessage = 300

// call sends one request. path is the escaped path below the API base; query
// may be nil; in, when not nil, is sent as JSON; etag, when not "", is sent
// as If-None-Match. A 304 is returned as a response, any other status that is
// not 2xx as an *Error.
func (c *client) call(ctx context.Context, method, path string, query url.Values, in any, etag string) (*response, error) {
	fail := func(status int, msg string, err error) *Error {
		return &Error{Forge: c.kind, Method: method, Path: path, StatusCode: status, Message: c.scrub(msg), err: err}
	}
	req, err := c.newRequest(ctx, method, path, query, in, etag)
	if err != nil {
		return nil, fail(0, err.Error(), err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The transport's error quotes the URL, which holds no credential.
		return nil, fail(0, err.Error(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, fail(resp.StatusCode, "read answer: "+err.Error(), err)
	}
	if int64(len(data)) > c.maxBody {
		return nil, fail(resp.StatusCode, fmt.Sprintf("answer exceeds %d bytes", c.maxBody), nil)
	}
	rl, hasRate := parseRateLimit(resp.Header)
	if hasRate {
		c.mu.Lock()
		c.rate = rl
		c.mu.Unlock()
	}
	if resp.StatusCode == http.StatusNotModified || resp.StatusCode/100 == 2 {
		return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
	e := fail(resp.StatusCode, forgeMessage(data), nil)
	e.RetryAfter = retryAfter(resp.Header, rl, hasRate, time.Now())
	// GitHub answers 403 both for a spent primary limit (remaining 0) and
	// for its secondary limits (with Retry-After); GitLab answers 429.
	e.RateLimited = resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusForbidden && ((hasRate && rl.Remaining == 0) || resp.Header.Get("Retry-After") != ""))
	return nil, e
}

// newRequest builds a request with the provider's headers and the token.
func (c *client) newRequest(ctx context.Context, method, path string, query url.Values, in any, etag string) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "arbor")
	c.auth(req.Header, c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	return req, nil
}

// scrub masks the token in a message, in case a forge or proxy echoes it.
func (c *client) scrub(msg string) string {
	return redact.Values(plainError(msg), c.token).Error()
}

type plainError string

func (e plainError) Error() string { return string(e) }

// decode sends a request and decodes its JSON answer into out.
func (c *client) decode(ctx context.Context, method, path string, query url.Values, in, out any) (*response, error) {
	r, err := c.call(ctx, method, path, query, in, "")
	if err != nil {
		return nil, err
	}
	if out != nil && r.status != http.StatusNoContent {
		if err := json.Unmarshal(r.body, out); err != nil {
			return nil, &Error{Forge: c.kind, Method: method, Path: path, StatusCode: r.status, Message: "decode answer: " + err.Error(), err: err}
		}
	}
	return r, nil
}

// forgeMessage pulls the human message out of an error body: GitHub and Gitea
// send {"message": "..."}, GitLab {"message": ...} (a string, a list or an
// object of lists) or {"error": "..."}. Anything else is quoted as text.
func forgeMessage(body []byte) string {
	var m struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	text := ""
	if json.Unmarshal(body, &m) == nil {
		for _, raw := range []json.RawMessage{m.Message, m.Error} {
			if len(raw) == 0 {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				text = s
			} else {
				text = string(raw)
			}
			break
		}
	}
	if text == "" {
		text = string(body)
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > maxMessage {
		text = text[:maxMessage] + "…"
	}
	return text
}

// parseRateLimit reads GitHub's and Gitea's X-RateLimit-* headers or GitLab's
// RateLimit-* headers: limit, remaining, and reset as Unix seconds.
func parseRateLimit(h http.Header) (RateLimit, bool) {
	for _, prefix := range []string{"X-RateLimit-", "RateLimit-"} {
		rem, err1 := strconv.Atoi(h.Get(prefix + "Remaining"))
		limit, err2 := strconv.Atoi(h.Get(prefix + "Limit"))
		if err1 != nil || err2 != nil || rem < 0 || limit < 0 {
			continue
		}
		rl := RateLimit{Known: true, Limit: limit, Remaining: rem}
		if reset, err := strconv.ParseInt(h.Get(prefix+"Reset"), 10, 64); err == nil && reset > 0 {
			rl.Reset = time.Unix(reset, 0)
		}
		return rl, true
	}
	return RateLimit{}, false
}

// retryAfter is the wait a refusal asks for: Retry-After in seconds, or the
// time to the rate limit's reset when it is spent.
func retryAfter(h http.Header, rl RateLimit, hasRate bool, now time.Time) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if hasRate && rl.Remaining == 0 && rl.Reset.After(now) {
		return rl.Reset.Sub(now)
	}
	return 0
}

func (c *client) rateLimit() RateLimit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

// apiBase derives an API address from a forge's web address: webURL+suffix,
// or def when webURL is empty.
func apiBase(webURL, def, suffix string) (string, error) {
	if webURL == "" {
		return def, nil
	}
	u, err := url.Parse(webURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("forge: url %q is not an http(s) address", redact.URL(webURL))
	}
	if u.User != nil {
		return "", fmt.Errorf("forge: url %q holds credentials; use the token file", redact.URL(webURL))
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/") + suffix, nil
}

// repoPath escapes each segment of owner/name for a URL path.
func repoPath(repo string) string {
	parts := strings.Split(repo, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
