// Package httpjson writes JSON responses for arbor's HTTP API.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write sends v as indented JSON with the status code.
func Write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
