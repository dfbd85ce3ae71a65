package render

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// A chart that makes a password with randAlphaNum would get a new one at
// every render: the Secret would change on every resync (a write where
// there should be none) and the workload would lose its password. So the
// random functions draw from a stream that is the same for the same
// environment and chart, keyed with Context.HashKey, a secret of the
// daemon's (the keyed env-hash's key): the same render gives the same
// values, and nobody without the key can predict them. With no key (arbor
// validate, arbor render, an app without secrets_from) they are truly
// random, as in Helm. Certificate and key generation (genCA, genPrivateKey,
// ...) stay Helm's: they still change at every render (docs/charts.md).

// randStream is a deterministic byte stream: HMAC-SHA-256 of the key over
// a counter.
type randStream struct {
	mu    sync.Mutex
	key   []byte
	n     uint64
	block []byte
}

func (s *randStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range p {
		if len(s.block) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], s.n)
			s.n++
			m := hmac.New(sha256.New, s.key)
			m.Write(c[:])
			s.block = m.Sum(nil)
		}
		p[i], s.block = s.block[0], s.block[1:]
	}
	return len(p), nil
}

// chartRandom is the random source of one chart's render.
func chartRandom(hashKey []byte, namespace, chart string) io.Reader {
	if len(hashKey) == 0 {
		return rand.Reader
	}
	m := hmac.New(sha256.New, hashKey)
	fmt.Fprintf(m, "arbor chart random\x00%s\x00%s", namespace, chart)
	return &randStream{key: m.Sum(nil)}
}

const (
	alpha    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	numeric  = "0123456789"
	asciiSet = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
)

// randFrom draws n characters of set from r, without modulo bias.
func randFrom(r io.Reader, set string, n int) (string, error) {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(set)
	var b [1]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if int(b[0]) >= limit {
			continue
		}
		out = append(out, set[int(b[0])%len(set)])
	}
	return string(out), nil
}

// randFuncs are the random functions of Helm's template library, drawing
// from r, counts checked by count.
func randFuncs(r io.Reader, count func(string, int) error) map[string]any {
	str := func(name, set string) func(int) (string, error) {
		return func(n int) (string, error) {
			if err := count(name, n); err != nil {
				return "", err
			}
			if n < 0 {
				n = 0
			}
			return randFrom(r, set, n)
		}
	}
	return map[string]any{
		"randAlphaNum": str("randAlphaNum", alpha+numeric),
		"randAlpha":    str("randAlpha", alpha),
		"randNumeric":  str("randNumeric", numeric),
		"randAscii":    str("randAscii", asciiSet),
		"randBytes": func(n int) (string, error) {
			if err := count("randBytes", n); err != nil {
				return "", err
			}
			b := make([]byte, max(n, 0))
			if _, err := io.ReadFull(r, b); err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(b), nil
		},
		"uuidv4": func() (string, error) {
			var u [16]byte
			if _, err := io.ReadFull(r, u[:]); err != nil {
				return "", err
			}
			u[6] = u[6]&0x0f | 0x40
			u[8] = u[8]&0x3f | 0x80
			return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
		},
	}
}
