package conformance_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
)

// upstreamSuite is where the upstream NetworkPolicy e2e tests live in the
// k8s.io/kubernetes module.
const upstreamSuite = "test/e2e/network/netpol"

// TestUpstreamMapping compares the upstream It titles, read from the
// k8s.io/kubernetes module at the version the local control plane pins,
// with the catalogue and this package's README, both ways: every upstream
// test is in the README's table of its context, mapped to the case that
// reproduces it or with the reason it is not reproduced, and every test the
// README or the catalogue names exists upstream. When the pinned version
// moves, the failure lists what upstream added and removed.
func TestUpstreamMapping(t *testing.T) {
	dir := upstreamModuleDir(t)
	upstream, err := upstreamTests(filepath.Join(dir, upstreamSuite))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := readmeMapping("README.md")
	if err != nil {
		t.Fatal(err)
	}
	reproducedBy := map[upstreamTest]string{}
	for _, c := range catalogue() {
		for _, u := range c.upstream {
			reproducedBy[u] = c.ID()
		}
	}
	in := func(u upstreamTest) string { return fmt.Sprintf("%q in context %q", u.it, u.context) }
	var problems []string
	for _, u := range upstream {
		row, ok := readme[u]
		switch {
		case !ok:
			problems = append(problems, "upstream "+in(u)+" is not in README.md")
		case row.reason == "" && row.caseID != reproducedBy[u]:
			problems = append(problems, fmt.Sprintf("README.md maps upstream %s to %s, the catalogue to %q", in(u), row.caseID, reproducedBy[u]))
		case row.reason != "" && reproducedBy[u] != "":
			problems = append(problems, fmt.Sprintf("README.md says upstream %s is not reproduced, but %s reproduces it", in(u), reproducedBy[u]))
		}
	}
	for u := range readme {
		if !slices.Contains(upstream, u) {
			problems = append(problems, "README.md maps "+in(u)+", which upstream does not have")
		}
	}
	for u, id := range reproducedBy {
		if !slices.Contains(upstream, u) {
			problems = append(problems, fmt.Sprintf("%s reproduces %s, which upstream does not have", id, in(u)))
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		t.Errorf("the mapping to upstream %s at k8s.io/kubernetes %s (%s) is out of date:\n  %s",
			upstreamSuite, controlplane.KubernetesVersion, dir, strings.Join(problems, "\n  "))
	}
	if len(upstream) < 50 {
		t.Errorf("only %d It titles read from upstream: the parser no longer understands %s", len(upstream), upstreamSuite)
	}
}

// upstreamModuleDir returns the k8s.io/kubernetes module at the version
// the local control plane runs, as the tools module cluster/local/kubebin
// pins it, downloading it into the module cache when it is not there yet.
func upstreamModuleDir(t *testing.T) string {
	t.Helper()
	module := "k8s.io/kubernetes@" + controlplane.KubernetesVersion
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join("..", "..", "cluster", "local", "kubebin")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &info); jsonErr != nil || info.Error != "" || err != nil || info.Dir == "" {
		t.Fatalf("locating %s (go mod download -json in %s): %v %s %s", module, cmd.Dir, err, info.Error, exitStderr(err))
	}
	return info.Dir
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// upstreamTests reads the It titles of the network_policy*.go files of dir
// with go/ast, each with its context: the title of the innermost container
// (Describe, Context, SIGDescribe) around it. Titles are the string
// arguments of the call, constant concatenations included, joined by
// spaces as the e2e framework joins them. A title that is not a constant,
// and a (context, It) pair that occurs twice, are errors: the key would be
// ambiguous.
func upstreamTests(dir string) ([]upstreamTest, error) {
	files, err := filepath.Glob(filepath.Join(dir, "network_policy*.go"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network_policy*.go in %s", dir)
	}
	var out []upstreamTest
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
		var walkErr error
		var walk func(n ast.Node, containers []string)
		walk = func(n ast.Node, containers []string) {
			ast.Inspect(n, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || walkErr != nil {
					return walkErr == nil
				}
				kind := ginkgoNode(call.Fun)
				if kind == "" {
					return true
				}
				title, err := callTitle(call)
				if err != nil {
					walkErr = fmt.Errorf("%s: %w", fset.Position(call.Pos()), err)
					return false
				}
				if kind == "It" {
					if len(containers) == 0 {
						walkErr = fmt.Errorf("%s: It %q outside any container", fset.Position(call.Pos()), title)
						return false
					}
					out = append(out, upstreamTest{context: containers[len(containers)-1], it: title})
					return false
				}
				for _, arg := range call.Args {
					walk(arg, append(slices.Clip(containers), title))
				}
				return false
			})
		}
		walk(file, nil)
		if walkErr != nil {
			return nil, walkErr
		}
	}
	for i, u := range out {
		if slices.Contains(out[:i], u) {
			return nil, fmt.Errorf("upstream has It %q twice in context %q", u.it, u.context)
		}
	}
	return out, nil
}

// ginkgoNode says whether fun is a Ginkgo container ("container"), an It
// ("It"), or neither (""), whatever it is called on: ginkgo.It, f.It,
// framework.ConformanceIt, common.SIGDescribe, ginkgo.Context, ...
func ginkgoNode(fun ast.Expr) string {
	var name string
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		name = f.Sel.Name
	case *ast.Ident:
		name = f.Name
	}
	switch name {
	case "It", "ConformanceIt", "FIt", "PIt":
		return "It"
	case "Describe", "SIGDescribe", "Context", "When", "FDescribe", "FContext", "PDescribe", "PContext":
		return "container"
	}
	return ""
}

// callTitle joins the constant string arguments of a Ginkgo call.
func callTitle(call *ast.CallExpr) (string, error) {
	var parts []string
	for _, arg := range call.Args {
		switch arg.(type) {
		case *ast.BasicLit, *ast.BinaryExpr:
			s, err := constString(arg)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("a Ginkgo node without a constant title")
	}
	return strings.Join(parts, " "), nil
}

// constString evaluates a string literal or a + concatenation of them.
func constString(e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", fmt.Errorf("title argument %s is not a string", e.Value)
		}
		return strconv.Unquote(e.Value)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", fmt.Errorf("title argument with operator %s", e.Op)
		}
		x, err := constString(e.X)
		if err != nil {
			return "", err
		}
		y, err := constString(e.Y)
		if err != nil {
			return "", err
		}
		return x + y, nil
	case *ast.ParenExpr:
		return constString(e.X)
	}
	return "", fmt.Errorf("title argument %T is not a constant string", e)
}

// readmeRow is a row of the README's upstream tables: the case that
// reproduces the test, or the reason it is not reproduced.
type readmeRow struct {
	caseID string
	reason string
}

// readmeMapping reads the tables of the README's section "Upstream tests
// and their cases": one "### <context>" heading per upstream context, and
// rows "| <It title> | `conformance/<id>` ... |" or "| <It title> | not
// reproduced: <reason> |".
func readmeMapping(path string) (map[upstreamTest]readmeRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[upstreamTest]readmeRow{}
	inSection, context := false, ""
	for n, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inSection = line == "## Upstream tests and their cases"
			continue
		case !inSection:
			continue
		case strings.HasPrefix(line, "### "):
			context = strings.TrimPrefix(line, "### ")
			continue
		case !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| upstream `It`") || strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 2 || context == "" {
			return nil, fmt.Errorf("%s:%d: want | <It> | <case or reason> | under a ### context heading", path, n+1)
		}
		u := upstreamTest{context: context, it: cells[0]}
		if _, dup := out[u]; dup {
			return nil, fmt.Errorf("%s:%d: %q is listed twice in %q", path, n+1, u.it, context)
		}
		var row readmeRow
		if reason, ok := strings.CutPrefix(cells[1], "not reproduced: "); ok {
			row.reason = reason
		} else if id, ok := strings.CutPrefix(cells[1], "`conformance/"); ok {
			id, _, _ = strings.Cut(id, "`")
			row.caseID = "conformance/" + id
		} else {
			return nil, fmt.Errorf("%s:%d: %q: want `conformance/<id>` or \"not reproduced: <reason>\"", path, n+1, cells[1])
		}
		out[u] = row
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no section \"## Upstream tests and their cases\" with tables", path)
	}
	return out, nil
}

func TestUpstreamTestsParser(t *testing.T) {
	dir := t.TempDir()
	src := `package netpol

var _ = common.SIGDescribe("Netpol", feature.SCTPConnectivity, "[LinuxOnly]", func() {
	f := framework.NewDefaultFramework("netpol")
	ginkgo.Context("between " + "server and client", func() {
		f.It("should deny" + " " + "all", feature.NetworkPolicy, func(ctx context.Context) {})
		ginkgo.It("should allow", func(ctx context.Context) {})
	})
	ginkgo.Context("using UDP", func() {
		f.It("should deny all", func(ctx context.Context) {})
	})
	ginkgo.It("at the top", func(ctx context.Context) {})
})
`
	if err := os.WriteFile(filepath.Join(dir, "network_policy_x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := upstreamTests(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []upstreamTest{
		{"between server and client", "should deny all"},
		{"between server and client", "should allow"},
		{"using UDP", "should deny all"},
		{"Netpol [LinuxOnly]", "at the top"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	dup := strings.Replace(src, `"using UDP"`, `"between server and client"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "network_policy_x.go"), []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := upstreamTests(dir); err == nil || !strings.Contains(err.Error(), `twice in context "between server and client"`) {
		t.Errorf("a duplicate (context, It): err = %v", err)
	}
}
