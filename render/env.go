package render

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"

	"github.com/arbordev/arbor/schema"
)

// envValue is one variable's value with whether it is secret. missing marks
// a secret whose value is neither in git nor in the daemon's Secret; it is an
// error only if nothing of higher precedence sets the variable.
type envValue struct {
	value   string
	secret  bool
	missing bool
}

// envSet is the variables of one workload.
type envSet map[string]envValue

// validKey reports whether s can be a ConfigMap or Secret key: [-._a-zA-Z0-9]+.
func validKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// isEnvName reports whether s is a variable name: [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// injectedVars are the RELEASE_* variables of an app (docs/release-yaml.md#environment-variables).
func (r *renderer) injectedVars(a *app) envSet {
	set := make(envSet, 8+len(r.injected)+16)
	put := func(k, v string) { set[k] = envValue{value: v} }
	put("RELEASE_APP_NAME", a.name)
	put("RELEASE_ENV_ID", r.env.EnvID)
	put("RELEASE_BRANCH_NAME", a.branch)
	put("RELEASE_COMMIT_SHA", a.commit)
	put("RELEASE_COMMIT_SHORT", shortCommit(a.commit))
	put("RELEASE_DOMAIN", a.domain)
	put("RELEASE_CONTEXT", a.t.Context)
	put("RELEASE_ENV", "true")
	for k, v := range r.injected {
		put(k, v)
	}
	return set
}

// SecretPlaceholder is the value a secret with no value gets when
// Context.SecretPlaceholders is set.
func SecretPlaceholder(key string) string { return "arbor-placeholder-for-" + key }

// layer applies a list of variables over the set.
func (a *app) layer(set envSet, vars []schema.EnvVar, field string) error {
	for i, v := range vars {
		if v.Key == "" {
			return fmt.Errorf("%s[%d]: key is required", field, i)
		}
		if !validKey(v.Key) {
			return fmt.Errorf("%s[%d]: %q is not a valid variable name", field, i, v.Key)
		}
		ev := envValue{value: string(v.Value), secret: v.Secret}
		if v.Secret && v.Value == "" {
			val, ok := a.secrets[v.Key]
			ev.value, ev.missing = val, !ok
			if !ok && a.placeholders {
				ev.value, ev.missing = SecretPlaceholder(v.Key), false
			}
		}
		set[v.Key] = ev
	}
	return nil
}

// computeEnv builds a workload's variables: injected, defaults, the env-vars
// file's entries for each of fileKeys, the inline lists, then the mapping.
func (r *renderer) computeEnv(a *app, fileKeys []string, inline [][]schema.EnvVar, inlineField []string) (envSet, error) {
	set := r.injectedVars(a)
	if err := a.layer(set, a.ev.Defaults, "environment variables: defaults"); err != nil {
		return nil, err
	}
	for _, k := range fileKeys {
		if err := a.layer(set, a.ev.Services[k], "environment variables: services."+k); err != nil {
			return nil, err
		}
	}
	for i, l := range inline {
		if err := a.layer(set, l, inlineField[i]); err != nil {
			return nil, err
		}
	}
	if err := a.checkMapping(); err != nil {
		return nil, err
	}
	applyMapping(set, a.ev.Mapping)
	var missing []string
	for k, v := range set {
		if v.missing {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("env %s: secret has no value in git and none in the app's secrets", strings.Join(missing, ", "))
	}
	return set, nil
}

// mappingRefs returns the variable names a mapping value reads: a bare
// variable name, or each $VAR, ${VAR} and ${VAR:-fallback} in it.
func mappingRefs(expr string) []string {
	if isEnvName(expr) {
		return []string{expr}
	}
	var refs []string
	_ = interpolate(expr, func(n string) (envValue, bool) {
		refs = append(refs, n)
		return envValue{}, false
	})
	return refs
}

// checkMappingCycles reports a cycle among mapping keys, naming it.
func checkMappingCycles(m map[string]string) error {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(k string) error
	visit = func(k string) error {
		switch state[k] {
		case active:
			i := len(stack) - 1
			for i > 0 && stack[i] != k {
				i--
			}
			return fmt.Errorf("environment variables: mapping has a cycle: %s -> %s", strings.Join(stack[i:], " -> "), k)
		case done:
			return nil
		}
		state[k] = active
		stack = append(stack, k)
		for _, ref := range mappingRefs(m[k]) {
			if _, ok := m[ref]; ok && ref != k {
				if err := visit(ref); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[k] = done
		return nil
	}
	for _, k := range sortedKeys(m) {
		if err := visit(k); err != nil {
			return err
		}
	}
	return nil
}

// checkMapping checks the app's mapping for cycles, once per render.
func (a *app) checkMapping() error {
	if !a.mappingChecked {
		a.mappingChecked = true
		a.mappingErr = checkMappingCycles(a.ev.Mapping)
	}
	return a.mappingErr
}

// applyMapping computes the mapping over the set, which must have no cycle.
// A key that reads another mapping key sees that key's mapped value; a key
// that reads itself sees the value from below the mapping. A bare name that
// names no variable leaves the key unset.
func applyMapping(base envSet, m map[string]string) {
	if len(m) == 0 {
		return
	}
	resolved := map[string]*envValue{}
	var resolve func(k string) (envValue, bool)
	resolve = func(k string) (envValue, bool) {
		if v, ok := resolved[k]; ok {
			if v == nil {
				return envValue{}, false
			}
			return *v, true
		}
		expr := m[k]
		lookup := func(n string) (envValue, bool) {
			if _, isKey := m[n]; isKey && n != k {
				return resolve(n)
			}
			v, ok := base[n]
			return v, ok
		}
		var out envValue
		ok := true
		if isEnvName(expr) {
			out, ok = lookup(expr)
		} else {
			out = interpolate(expr, lookup)
		}
		if !ok {
			resolved[k] = nil
			return envValue{}, false
		}
		resolved[k] = &out
		return out, true
	}
	for k := range m {
		resolve(k)
	}
	for k, v := range resolved {
		if v != nil {
			base[k] = *v
		}
	}
}

// interpolate expands $VAR, ${VAR} and ${VAR:-fallback}; "$$" is a literal
// "$". An unset variable reads as "". The result is secret when any variable
// it read is.
func interpolate(s string, lookup func(string) (envValue, bool)) envValue {
	var b strings.Builder
	out := envValue{}
	read := func(name, fallback string, hasFallback bool) {
		v, ok := lookup(name)
		if v.missing {
			out.missing = true
		}
		if (!ok || v.value == "") && hasFallback {
			b.WriteString(fallback)
			return
		}
		if ok {
			out.secret = out.secret || v.secret
			b.WriteString(v.value)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch n := s[i+1]; {
		case n == '$':
			b.WriteByte('$')
			i++
		case n == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			body := s[i+2 : i+end]
			name, fb, hasFB := strings.Cut(body, ":-")
			read(name, fb, hasFB)
			i += end
		case n == '_' || (n|0x20 >= 'a' && n|0x20 <= 'z'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			read(s[i+1:j], "", false)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	out.value = b.String()
	return out
}

// envObjects writes a workload's ConfigMap of plain values and, when it has
// any, its Secret of secret values, both named name, and returns the
// containers' envFrom and a hash of both.
func (r *renderer) envObjects(a *app, name string, set envSet, labels map[string]string) ([]any, string) {
	plain := make(map[string]any, len(set))
	secret := map[string]any{}
	h := r.secretHash()
	keys := sortedKeys(set)
	for _, k := range keys {
		v := set[k]
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(v.value))
		h.Write([]byte{0})
		if v.secret {
			secret[k] = base64.StdEncoding.EncodeToString([]byte(v.value))
		} else {
			plain[k] = v.value
		}
	}
	cm := r.newObject(a, "v1", "ConfigMap", name, labels)
	cm["data"] = plain
	r.add(cm, "")
	envFrom := []any{obj{"configMapRef": obj{"name": name}}}
	if len(secret) > 0 {
		s := r.newObject(a, "v1", "Secret", name, labels)
		s["type"] = "Opaque"
		s["data"] = secret
		r.add(s, "")
		envFrom = append(envFrom, obj{"secretRef": obj{"name": name}})
	}
	return envFrom, hex.EncodeToString(h.Sum(nil))[:16]
}

// containerEnv turns an init container's or sidecar's own envs into env entries.
func containerEnv(vars []schema.EnvVar, field string) ([]any, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	sorted := append([]schema.EnvVar(nil), vars...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	out := make([]any, 0, len(sorted))
	for i, v := range sorted {
		if !isEnvName(v.Key) {
			return nil, fmt.Errorf("%s[%d]: %q is not a valid variable name", field, i, v.Key)
		}
		if v.Secret {
			return nil, errors.New(field + ": secret values are not supported here; put them in the service's envs, which every container of the pod receives")
		}
		out = append(out, obj{"name": v.Key, "value": string(v.Value)})
	}
	return out, nil
}

// secretHash starts a hash over values that include secrets: keyed with
// Context.HashKey when the caller gives one, so that the digest, which is
// written where more people can read it than the Secret, cannot be used to
// test guesses of a secret offline.
func (r *renderer) secretHash() hash.Hash {
	if len(r.in.Context.HashKey) > 0 {
		return hmac.New(sha256.New, r.in.Context.HashKey)
	}
	return sha256.New()
}
