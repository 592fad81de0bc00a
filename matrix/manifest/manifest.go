// Package manifest loads NetworkPolicy manifests and model files strictly:
// every unknown field, wrong type and API validation failure is reported with
// the file, the document, the field path, the line and the reason, and nothing
// is ever silently reinterpreted. YAML scalars follow the types of the target
// fields, so an unquoted `y` or `no` stays a string.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// Problem is one reason a manifest or model file was rejected.
type Problem struct {
	File string
	// Document is the 1-based position of the YAML document in the file.
	Document int
	// Field is the path of the offending field, such as spec.egress[0].to[0].ports.
	Field  string
	Line   int
	Reason string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Document > 0 {
		fmt.Fprintf(&b, ": document %d", p.Document)
	}
	if p.Field != "" && p.Field != "<nil>" {
		fmt.Fprintf(&b, ": %s", p.Field)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	b.WriteString(": ")
	b.WriteString(p.Reason)
	return b.String()
}

// Error is every problem found while loading.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Note is something a load skipped on purpose, such as a document of another kind.
type Note struct {
	File     string
	Document int
	Message  string
}

func (n Note) String() string {
	return fmt.Sprintf("%s: document %d: %s", n.File, n.Document, n.Message)
}

// Policies is the result of loading NetworkPolicy manifests.
type Policies struct {
	Items []*networkingv1.NetworkPolicy
	// Sources gives, for each "namespace/name", the file and document it came from.
	Sources map[string]string
	Notes   []Note
}

// LoadPolicies reads a manifest file, or every .yaml, .yml and .json file under
// a directory (recursively, in lexical order). Documents of other kinds are
// skipped with a note. Policies without a namespace get defaultNamespace.
func LoadPolicies(path, defaultNamespace string) (*Policies, error) {
	files, err := manifestFiles(path)
	if err != nil {
		return nil, err
	}
	out := &Policies{Sources: map[string]string{}}
	var problems []Problem
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifest: %w", err)
		}
		problems = append(problems, out.parse(f, data, defaultNamespace)...)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return out, nil
}

// ParsePolicies parses manifests held in memory; name is used in messages.
func ParsePolicies(name string, data []byte, defaultNamespace string) (*Policies, error) {
	out := &Policies{Sources: map[string]string{}}
	if problems := out.parse(name, data, defaultNamespace); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return out, nil
}

func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing manifests in %s: %w", path, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .yaml, .yml or .json files in %s", path)
	}
	sort.Strings(files)
	return files, nil
}

func (ps *Policies) parse(file string, data []byte, defaultNamespace string) []Problem {
	var problems []Problem
	err := eachDocument(data, func(doc int, n *yaml.Node) {
		for _, p := range ps.document(file, doc, n, nil, defaultNamespace) {
			p.File, p.Document = file, doc
			problems = append(problems, p)
		}
	})
	if err != nil {
		problems = append(problems, Problem{File: file, Reason: err.Error()})
	}
	return problems
}

// eachDocument calls fn for every non-empty YAML document.
func eachDocument(data []byte, fn func(doc int, n *yaml.Node)) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", doc, err)
		}
		if len(n.Content) == 0 || isNull(n.Content[0]) {
			continue
		}
		fn(doc, n.Content[0])
	}
}

// document handles one object, which may be a List of objects; prefix is the
// path of the object within its document (items[i] inside a List).
func (ps *Policies) document(file string, doc int, n *yaml.Node, prefix *field.Path, defaultNamespace string) []Problem {
	at := func(child string) *field.Path {
		if prefix == nil {
			return field.NewPath(child)
		}
		return prefix.Child(child)
	}
	if n.Kind != yaml.MappingNode {
		return []Problem{{Field: pathString(prefix), Line: n.Line, Reason: "expected a Kubernetes object (a mapping with apiVersion and kind), found " + kindName(n)}}
	}
	apiVersion, kind := scalarField(n, "apiVersion"), scalarField(n, "kind")
	switch {
	case kind == "":
		return []Problem{{Field: at("kind").String(), Line: n.Line, Reason: "required: every manifest needs apiVersion and kind"}}
	case kind == "NetworkPolicy":
		if apiVersion != "networking.k8s.io/v1" {
			return []Problem{{Field: at("apiVersion").String(), Line: n.Line, Reason: fmt.Sprintf("NetworkPolicy must have apiVersion networking.k8s.io/v1, found %q", apiVersion)}}
		}
		return ps.policy(file, doc, n, prefix, defaultNamespace)
	case strings.HasSuffix(kind, "List"):
		items := mappingValue(n, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return []Problem{{Field: at("items").String(), Line: n.Line, Reason: "a " + kind + " needs a list of items"}}
		}
		var problems []Problem
		for i, item := range items.Content {
			problems = append(problems, ps.document(file, doc, item, at("items").Index(i), defaultNamespace)...)
		}
		return problems
	default:
		name := scalarField(mappingValue(n, "metadata"), "name")
		ps.Notes = append(ps.Notes, Note{File: file, Document: doc, Message: fmt.Sprintf("skipped %s %q (%s): not a NetworkPolicy", kind, name, apiVersion)})
		return nil
	}
}

func (ps *Policies) policy(file string, doc int, n *yaml.Node, prefix *field.Path, defaultNamespace string) []Problem {
	np := &networkingv1.NetworkPolicy{}
	lines, problems := decode(n, np, prefix)
	if len(problems) > 0 {
		return problems
	}
	if np.Namespace == "" {
		np.Namespace = defaultNamespace
	}
	for _, e := range matrix.ValidatePolicy(np) {
		problems = append(problems, fieldProblem(e, prefix, lines))
	}
	if len(problems) > 0 {
		return problems
	}
	key := np.Namespace + "/" + np.Name
	if first, dup := ps.Sources[key]; dup {
		return []Problem{{Field: pathString(prefix), Line: n.Line, Reason: fmt.Sprintf("NetworkPolicy %s is defined twice (first in %s)", key, first)}}
	}
	ps.Sources[key] = fmt.Sprintf("%s document %d", file, doc)
	ps.Items = append(ps.Items, np)
	return nil
}

// decode converts n into out, type-directed and strict, and returns the line
// of every field path for later messages.
func decode(n *yaml.Node, out any, prefix *field.Path) (map[string]int, []Problem) {
	c := &converter{lines: map[string]int{}}
	value := c.convert(n, reflect.TypeOf(out).Elem(), prefix)
	if len(c.problems) > 0 {
		return c.lines, c.problems
	}
	data, err := json.Marshal(value)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		return c.lines, []Problem{{Field: pathString(prefix), Line: n.Line, Reason: err.Error()}}
	}
	return c.lines, nil
}

// fieldProblem turns a validation error into a Problem, finding the line of
// the closest field path that was present in the file.
func fieldProblem(e *field.Error, prefix *field.Path, lines map[string]int) Problem {
	path := e.Field
	if prefix != nil {
		path = prefix.String() + "." + path
	}
	line := 0
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := lines[p]; ok {
			line = l
			break
		}
	}
	return Problem{Field: path, Line: line, Reason: e.ErrorBody()}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func pathString(p *field.Path) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalarField(n *yaml.Node, key string) string {
	v := mappingValue(n, key)
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// LoadModel reads a model file (YAML or JSON; see matrix.Model for the fields).
func LoadModel(path string) (*matrix.Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model: %w", err)
	}
	return ParseModel(path, data)
}

// ParseModel parses a model held in memory; name is used in messages.
func ParseModel(name string, data []byte) (*matrix.Model, error) {
	var model *matrix.Model
	var problems []Problem
	docs := 0
	err := eachDocument(data, func(doc int, n *yaml.Node) {
		docs++
		if docs > 1 {
			problems = append(problems, Problem{File: name, Document: doc, Line: n.Line, Reason: "a model file holds one document"})
			return
		}
		m := &matrix.Model{}
		lines, ps := decode(n, m, nil)
		for _, e := range m.Validate() {
			ps = append(ps, fieldProblem(e, nil, lines))
		}
		for _, p := range ps {
			p.File, p.Document = name, doc
			problems = append(problems, p)
		}
		model = m
	})
	if err != nil {
		problems = append(problems, Problem{File: name, Reason: err.Error()})
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	if model == nil {
		return nil, fmt.Errorf("%s: the model is empty", name)
	}
	return model, nil
}
