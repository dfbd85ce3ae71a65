package render

import (
	"fmt"
	"reflect"
	"strings"
)

// lookupFunc returns a variable's value and whether it is known.
type lookupFunc func(name string) (string, bool)

// expandVars replaces each ${name} in s through lookup. With strict, an unknown
// name is an error; otherwise it is left as written for a later pass.
func expandVars(s string, lookup lookupFunc, strict bool) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		name := rest[i+2 : i+j]
		b.WriteString(rest[:i])
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else if strict {
			return "", fmt.Errorf("unknown variable ${%s}", name)
		} else {
			b.WriteString(rest[i : i+j+1])
		}
		rest = rest[i+j+1:]
	}
}

// expandStrings returns a deep copy of v (a pointer to a struct) with every
// string field passed through f. Values held in interfaces (such as the
// free-form build key) are shared, not copied: render never writes to them.
func expandStrings[T any](v *T, f func(string) (string, error)) (*T, error) {
	if v == nil {
		return nil, nil
	}
	out := new(T)
	if err := copyValue(reflect.ValueOf(out).Elem(), reflect.ValueOf(v).Elem(), f); err != nil {
		return nil, err
	}
	return out, nil
}

func copyValue(dst, src reflect.Value, f func(string) (string, error)) error {
	switch src.Kind() {
	case reflect.String:
		s, err := f(src.String())
		if err != nil {
			return err
		}
		dst.SetString(s)
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		p := reflect.New(src.Type().Elem())
		if err := copyValue(p.Elem(), src.Elem(), f); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Struct:
		// Unexported fields (a compiled branch pattern) are copied as they
		// are; the exported ones are then deep-copied over them.
		dst.Set(src)
		for i := 0; i < src.NumField(); i++ {
			if !dst.Field(i).CanSet() {
				continue
			}
			if err := copyValue(dst.Field(i), src.Field(i), f); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return nil
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			if err := copyValue(s.Index(i), src.Index(i), f); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return nil
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			k.Set(iter.Key())
			val := reflect.New(src.Type().Elem()).Elem()
			if err := copyValue(val, iter.Value(), f); err != nil {
				return err
			}
			m.SetMapIndex(k, val)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
	return nil
}
