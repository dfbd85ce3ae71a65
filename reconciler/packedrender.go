package reconciler

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/arbordev/arbor/render"
)

// packedRender is a render kept in memory as deflated JSON: a thousand
// environments' renders as maps of maps held tens of megabytes, and even as
// JSON about 6 KiB an environment, for what is read again only on a repair,
// a retry, a teardown or a comment.
type packedRender struct {
	data []byte // deflated JSON of the render.Environment
}

// packer is the one deflate writer every pack goes through: a writer's own
// tables are about a megabyte, so a writer per pack (64 at once in a burst
// of branches) made more garbage than the deflating saved, while one
// writer under a lock packs a few kilobytes in tens of microseconds.
var packer struct {
	mu  sync.Mutex
	w   *flate.Writer
	buf bytes.Buffer
}

func packRender(env *render.Environment) (packedRender, error) {
	data, err := json.Marshal(env)
	if err != nil {
		return packedRender{}, fmt.Errorf("pack render: %w", err)
	}
	packed, err := deflate(data)
	if err != nil {
		return packedRender{}, fmt.Errorf("pack render: %w", err)
	}
	return packedRender{data: packed}, nil
}

// deflate compresses data through the shared writer and returns a copy
// sized to fit.
func deflate(data []byte) ([]byte, error) {
	packer.mu.Lock()
	defer packer.mu.Unlock()
	packer.buf.Reset()
	if packer.w == nil {
		w, err := flate.NewWriter(&packer.buf, flate.BestSpeed)
		if err != nil {
			return nil, err
		}
		packer.w = w
	} else {
		packer.w.Reset(&packer.buf)
	}
	if _, err := packer.w.Write(data); err != nil {
		return nil, err
	}
	if err := packer.w.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(packer.buf.Bytes()), nil
}

// unpack returns a fresh copy of the render, nothing of it shared with
// another. Nil when it cannot be read back.
func (p packedRender) unpack() *render.Environment {
	if p.data == nil {
		return nil
	}
	r := flate.NewReader(bytes.NewReader(p.data))
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil
	}
	env := &render.Environment{}
	if err := json.Unmarshal(data, env); err != nil {
		return nil
	}
	return env
}
