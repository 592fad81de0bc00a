package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// converter turns a YAML node into JSON-ready values guided by the Go type it
// will be decoded into. Being type-directed is what makes it strict and
// unsurprising:
//   - a scalar bound for a string field is the scalar's text, quoted or not,
//     so `namespace: y`, `team: no` and `version: 1.10` stay strings;
//   - a key that is not a field of the target struct is an error with its
//     field path, never dropped;
//   - a value of the wrong shape (a list where a map belongs) is an error.
//
// It also records the line of every field path, so that later validation
// errors can point at the line too.
type converter struct {
	problems []Problem
	lines    map[string]int
}

var (
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

func (c *converter) fail(path *field.Path, n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: path.String(), Line: n.Line, Reason: fmt.Sprintf(format, args...)})
}

func (c *converter) convert(n *yaml.Node, t reflect.Type, path *field.Path) any {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	c.lines[path.String()] = n.Line
	if isNull(n) {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == intOrStringType:
		return c.intOrString(n, path)
	case reflect.PointerTo(t).Implements(unmarshalerType), t.Kind() == reflect.Interface:
		return c.generic(n, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		return c.object(n, t, path)
	case reflect.Map:
		return c.mapping(n, t, path)
	case reflect.Slice:
		return c.sequence(n, t, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.fail(path, n, "expected a string, found %s", kindName(n))
			return nil
		}
		return n.Value
	case reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true":
			return true
		case "false":
			return false
		}
		c.fail(path, n, "expected a boolean (true or false), found %s", kindName(n))
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			c.fail(path, n, "expected an integer, found %s", kindName(n))
			return nil
		}
		return v
	case reflect.Float32, reflect.Float64:
		v, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			c.fail(path, n, "expected a number, found %s", kindName(n))
			return nil
		}
		return v
	}
	c.fail(path, n, "internal error: cannot decode into %s", t)
	return nil
}

// intOrString keeps YAML's distinction: an unquoted integer is a number,
// anything else (including a quoted "80") is a string, as kubectl does.
func (c *converter) intOrString(n *yaml.Node, path *field.Path) any {
	if n.Kind != yaml.ScalarNode {
		c.fail(path, n, "expected an integer or a string, found %s", kindName(n))
		return nil
	}
	if n.Tag == "!!int" {
		v, err := strconv.ParseInt(n.Value, 10, 32)
		if err != nil {
			c.fail(path, n, "expected an integer that fits in 32 bits, or a string, found %s", kindName(n))
			return nil
		}
		return v
	}
	return n.Value
}

func (c *converter) object(n *yaml.Node, t reflect.Type, path *field.Path) any {
	if n.Kind != yaml.MappingNode {
		c.fail(path, n, "expected a mapping (an object with fields), found %s", kindName(n))
		return nil
	}
	fields := jsonFields(t)
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		child := path.Child(key.Value)
		f, ok := fields[key.Value]
		if !ok {
			c.fail(child, key, "unknown field %q: %s has only %s", key.Value, t.Name(), strings.Join(sortedKeys(fields), ", "))
			continue
		}
		if _, dup := out[key.Value]; dup {
			c.fail(child, key, "duplicate field %q", key.Value)
			continue
		}
		out[key.Value] = c.convert(value, f, child)
	}
	return out
}

func (c *converter) mapping(n *yaml.Node, t reflect.Type, path *field.Path) any {
	if n.Kind != yaml.MappingNode {
		c.fail(path, n, "expected a mapping, found %s", kindName(n))
		return nil
	}
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		child := path.Key(key.Value)
		if key.Kind != yaml.ScalarNode {
			c.fail(child, key, "map keys must be strings, found %s", kindName(key))
			continue
		}
		if _, dup := out[key.Value]; dup {
			c.fail(child, key, "duplicate field %q", key.Value)
			continue
		}
		out[key.Value] = c.convert(value, t.Elem(), child)
	}
	return out
}

func (c *converter) sequence(n *yaml.Node, t reflect.Type, path *field.Path) any {
	if n.Kind != yaml.SequenceNode {
		c.fail(path, n, "expected a list, found %s", kindName(n))
		return nil
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		out = append(out, c.convert(item, t.Elem(), path.Index(i)))
	}
	return out
}

// generic converts without a target type, using YAML 1.2 core-schema
// resolution: only true/false are booleans, so `y` and `no` stay strings.
func (c *converter) generic(n *yaml.Node, path *field.Path) any {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = c.generic(n.Content[i+1], path.Child(n.Content[i].Value))
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			out = append(out, c.generic(item, path.Index(i)))
		}
		return out
	}
	var v any
	if err := n.Decode(&v); err != nil {
		c.fail(path, n, "%v", err)
		return nil
	}
	return v
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsonFields maps the JSON names of a struct's fields to their types,
// flattening embedded structs marked inline (as TypeMeta is).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
