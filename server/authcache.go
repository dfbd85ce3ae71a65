package server

import (
	"crypto/sha256"
	"sync"
	"time"
)

// The Authorizer keeps each review's answer for a short while: the status
// page reloads itself and a CLI sends several requests in a row, and each
// request cost a TokenReview and a SubjectAccessReview on the API server.
// A token revoked or a Role changed takes effect within the TTL (the API
// server's own webhook authenticator and authorizer cache their answers for
// minutes).
const (
	defaultDecisionTTL = 10 * time.Second
	maxDecisions       = 4096 // beyond it the cache starts over
)

// decisionKey names one answer: the token (hashed: the cache never holds a
// token), the verb and the resource name.
type decisionKey struct {
	token      [sha256.Size]byte
	verb, name string
}

// decision is an answer: the caller when allowed, else the refusal.
type decision struct {
	caller *Caller
	denied *Denied
	until  time.Time
}

func (d decision) answer() (*Caller, error) {
	if d.denied != nil {
		return nil, d.denied
	}
	return d.caller, nil
}

type decisionCache struct {
	mu sync.Mutex
	m  map[decisionKey]decision
}

func (c *decisionCache) get(k decisionKey, now time.Time) (decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	if !ok || !now.Before(d.until) {
		return decision{}, false
	}
	return d, true
}

func (c *decisionCache) put(k decisionKey, d decision, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[decisionKey]decision{}
	}
	if len(c.m) >= maxDecisions {
		for key, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxDecisions {
			clear(c.m)
		}
	}
	c.m[k] = d
}
