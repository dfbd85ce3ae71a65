package schema

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// eachString calls fn with the field path and value of every string in v (a
// decoded template), in a stable order. Untyped values (such as a service's
// build settings) are skipped: arbor does not interpolate them.
func eachString(v any, prefix string, fn func(field, s string)) {
	walkValue(reflect.ValueOf(v), prefix, fn)
}

func walkValue(v reflect.Value, field string, fn func(string, string)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkValue(v.Elem(), field, fn)
		}
	case reflect.String:
		if s := v.String(); s != "" {
			fn(field, s)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkValue(v.Index(i), fmt.Sprintf("%s[%d]", field, i), fn)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			walkValue(v.MapIndex(k), joinField(field, k.String()), fn)
		}
	case reflect.Struct:
		walkStruct(v, field, fn)
	}
}

func walkStruct(v reflect.Value, field string, fn func(string, string)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
			continue
		case strings.Contains(opts, "inline"):
			walkValue(v.Field(i), field, fn)
		default:
			walkValue(v.Field(i), joinField(field, name), fn)
		}
	}
}
