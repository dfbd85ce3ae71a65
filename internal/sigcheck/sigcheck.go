// Package sigcheck verifies the signatures and tokens that authenticate a
// webhook delivery, in constant time: one implementation for the git
// webhooks (gitsource) and the forge's (forge).
package sigcheck

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// HMAC reports whether header holds the hex HMAC-SHA256 of body under
// secret, after prefix ("sha256=" for GitHub's header, "" for Gitea's).
func HMAC(header, prefix string, body, secret []byte) bool {
	sig, ok := strings.CutPrefix(strings.TrimSpace(header), prefix)
	if !ok || sig == "" {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Token reports whether token equals secret. Both are hashed first, so that
// neither the content nor the length of the secret shows in the time taken.
func Token(token string, secret []byte) bool {
	if token == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
	return hmac.Equal(a[:], b[:])
}
