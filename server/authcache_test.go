package server

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// However many tokens callers send, the cache holds at most maxDecisions
// answers: the expired ones go first, and when every one is still fresh
// it starts over.
func TestDecisionCacheBounded(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	key := func(i int) decisionKey {
		return decisionKey{token: sha256.Sum256([]byte(fmt.Sprint("token-", i))), verb: "get"}
	}
	var c decisionCache
	for i := range maxDecisions + 100 {
		c.put(key(i), decision{caller: &Caller{User: "u"}, until: now.Add(time.Second)}, now)
		if len(c.m) > maxDecisions {
			t.Fatalf("%d answers held after %d puts, want at most %d", len(c.m), i+1, maxDecisions)
		}
	}
	if _, ok := c.get(key(maxDecisions+99), now); !ok {
		t.Error("the last answer put is not held")
	}

	// all expired: the next put drops them, keeps itself
	later := now.Add(time.Minute)
	for i := range maxDecisions {
		c.put(key(i), decision{until: now}, now)
	}
	c.put(key(-1), decision{until: later.Add(time.Second)}, later)
	if len(c.m) > maxDecisions {
		t.Fatalf("%d answers held, want at most %d", len(c.m), maxDecisions)
	}
	if _, ok := c.get(key(-1), later); !ok {
		t.Error("a fresh answer put over expired ones is not held")
	}
	if _, ok := c.get(key(0), later); ok {
		t.Error("an expired answer was given")
	}
}
