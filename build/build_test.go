// Package build_test checks the image build and the CI workflows without
// Docker or GitHub: the Dockerfile builds every command with the flags that
// make it reproducible and puts what the installers expect where they
// expect it, the Makefile builds the image the manifests name, and
// actionlint (as a library) finds nothing wrong in .github/workflows.
package build_test

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
	"github.com/netpolcheck/netpolcheck/suites/compiled"
)

const root = ".."

func read(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDockerfile(t *testing.T) {
	dockerfile := read(t, "build/Dockerfile")
	cases := []struct {
		what, want string
	}{
		{"static binaries", "CGO_ENABLED=0"},
		{"no local paths in binaries", "-trimpath"},
		{"no VCS stamping", "-buildvcs=false"},
		{"no build ID", `-ldflags="-s -w -buildid="`},
		{"the pinned toolchain, never a downloaded one", "GOTOOLCHAIN=local"},
		{"every command", "-o /out/ ./cmd/..."},
		{"the compiled suites next to /netpolcheck", "-o /out/suites/$s/$s.test ./suites/$s"},
		{"the bridge plugin where the Flannel installer takes it", "-o /out" + cni.BridgePluginPath},
		{"everything at /", "COPY --from=build /out/ /"},
		{"nftables for the enforcer, pinned", "nftables=${NFTABLES_VERSION}"},
		{"a dated Debian archive", "snapshot.debian.org/archive/debian/${DEBIAN_SNAPSHOT}"},
	}
	for _, tc := range cases {
		if !strings.Contains(dockerfile, tc.want) {
			t.Errorf("build/Dockerfile lacks %s (%q)", tc.what, tc.want)
		}
	}
	// The image and make build compile every suite netpolcheck run looks for.
	suites := strings.Join(compiled.Suites(), " ")
	if !strings.Contains(dockerfile, "for s in "+suites+"; do") {
		t.Errorf("build/Dockerfile does not compile the suites %s", suites)
	}
	if !strings.Contains(read(t, "Makefile"), "COMPILED_SUITES ?= "+suites+"\n") {
		t.Errorf("the Makefile's COMPILED_SUITES are not %s", suites)
	}
	if strings.Contains(dockerfile, "\nUSER ") {
		t.Error("the image must run as root: the probe agent needs raw sockets, the node agents NET_ADMIN")
	}
	// The deploy manifests and the probe pods run these binaries from /.
	for _, want := range []string{"netpolcheck", "netpolcheck-probe", "netpolcheck-cni", "netpolcheck-routes", "netpolcheck-enforcer"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", want, "main.go")); err != nil {
			t.Errorf("cmd/%s: %v (the image is expected to hold /%s)", want, err, want)
		}
	}
}

// The build context excludes nothing a build needs: no go:embed'ed file of
// a non-test source matches a pattern of build/Dockerfile.dockerignore.
func TestDockerignoreKeepsEmbeddedFiles(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(read(t, "build/Dockerfile.dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	embed := regexp.MustCompile(`(?m)^//go:embed (.+)$`)
	var embedded []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range embed.FindAllStringSubmatch(string(data), -1) {
			for _, file := range strings.Fields(m[1]) {
				rel, _ := filepath.Rel(root, filepath.Join(filepath.Dir(p), file))
				embedded = append(embedded, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) == 0 {
		t.Fatal("found no go:embed directive: the walk is broken")
	}
	for _, file := range embedded {
		for _, pattern := range patterns {
			if ignored(pattern, file) {
				t.Errorf("build/Dockerfile.dockerignore pattern %q drops %s, which the build embeds", pattern, file)
			}
		}
	}
}

// ignored reports whether a .dockerignore pattern excludes file or one of
// its parent directories.
func ignored(pattern, file string) bool {
	for p := file; p != "."; p = path.Dir(p) {
		if ok, _ := path.Match(strings.TrimPrefix(pattern, "**/"), p); ok {
			return true
		}
		if strings.HasPrefix(pattern, "**/") {
			if ok, _ := path.Match(strings.TrimPrefix(pattern, "**/"), path.Base(p)); ok {
				return true
			}
		}
	}
	return false
}

// The image `make image` builds is the one the manifests and the suites
// use by default.
func TestMakefileImage(t *testing.T) {
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)$`).FindStringSubmatch(read(t, "Makefile"))
	if m == nil {
		t.Fatal("the Makefile sets no IMAGE")
	}
	if m[1] != deploy.DefaultImage {
		t.Errorf("make image builds %s, the manifests run %s", m[1], deploy.DefaultImage)
	}
}

func workflows(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows (%v)", err)
	}
	return files
}

func lint(t *testing.T, files []string) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever}
	// With shellcheck on PATH (GitHub's runners have it), run: scripts are
	// checked too.
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	}
	linter, err := actionlint.NewLinter(&bytes.Buffer{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := linter.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

func TestWorkflowsPassActionlint(t *testing.T) {
	for _, e := range lint(t, workflows(t)) {
		t.Errorf("actionlint: %s", e)
	}
}

// The linter is not vacuous: a broken workflow fails it.
func TestActionlintCatchesMistakes(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.yml")
	workflow := "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.missing }}\n"
	if err := os.WriteFile(broken, []byte(workflow), 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := lint(t, []string{broken}); len(errs) == 0 {
		t.Error("actionlint accepted a workflow that reads an undefined matrix")
	}
}

// The CNI matrix covers every installer but "none" (which leaves pods
// without a network on kind).
func TestMatrixCoversEveryCNI(t *testing.T) {
	var wf struct {
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					CNI []string `yaml:"cni"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(read(t, ".github/workflows/cni-matrix.yml")), &wf); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(wf.Jobs["suites"].Strategy.Matrix.CNI))
	want := slices.DeleteFunc(cni.Names(), func(n string) bool { return n == "none" })
	if !slices.Equal(got, want) {
		t.Errorf("the matrix runs %v, the installers are %v", got, want)
	}
}

func TestIgnored(t *testing.T) {
	cases := []struct {
		pattern, file string
		want          bool
	}{
		{"docs", "docs/kind.md", true},
		{"docs", "reference-cni/docs/x.yaml", false},
		{"netpolcheck", "cmd/netpolcheck/main.go", false},
		{"reports/out", "reports/out/junit.xml", true},
		{"reports/out", "reports/comparison.html.tmpl", false},
		{"**/testdata", "cluster/cni/testdata/calico.yaml", true},
	}
	for _, tc := range cases {
		if got := ignored(tc.pattern, tc.file); got != tc.want {
			t.Errorf("ignored(%q, %q) = %v, want %v", tc.pattern, tc.file, got, tc.want)
		}
	}
}

// action is the part of action.yml the tests read.
type action struct {
	Inputs  map[string]struct{ Default string } `yaml:"inputs"`
	Outputs map[string]struct{ Value string }   `yaml:"outputs"`
	Runs    struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	Uses  string            `yaml:"uses"`
	If    string            `yaml:"if"`
	Shell string            `yaml:"shell"`
	Run   string            `yaml:"run"`
	Env   map[string]string `yaml:"env"`
	With  map[string]string `yaml:"with"`
}

func readAction(t *testing.T) (action, string) {
	t.Helper()
	text := read(t, "action.yml")
	var a action
	if err := yaml.Unmarshal([]byte(text), &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return a, text
}

// expression matches a ${{ ... }} expression of a workflow or action.
var expression = regexp.MustCompile(`\$\{\{[^}]*\}\}`)

// The action's shell steps are bash scripts shellcheck accepts (when it is
// on PATH, as actionlint runs it on workflows' steps: expressions replaced
// by a placeholder word), and they read inputs only through env:, never
// by expanding an expression in the script.
func TestActionShellSteps(t *testing.T) {
	a, _ := readAction(t)
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using %q, want composite", a.Runs.Using)
	}
	shellcheck, _ := exec.LookPath("shellcheck")
	if shellcheck == "" {
		t.Log("shellcheck is not on PATH: the scripts are not checked by it")
	}
	for i, s := range a.Runs.Steps {
		if s.Run == "" {
			continue
		}
		if s.Shell != "bash" {
			t.Errorf("step %d (%s): shell %q; a composite step needs one, bash here", i, s.Name, s.Shell)
		}
		if expression.MatchString(s.Run) {
			t.Errorf("step %d (%s): an expression in the script (pass it through env:): %s", i, s.Name, expression.FindString(s.Run))
		}
		if shellcheck == "" {
			continue
		}
		script := filepath.Join(t.TempDir(), "step.sh")
		// As a runner runs it: bash -e {0}.
		if err := os.WriteFile(script, []byte("#!/bin/bash\nset -e\n"+expression.ReplaceAllString(s.Run, "placeholder")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(shellcheck, "--norc", "--shell=bash", script).CombinedOutput(); err != nil {
			t.Errorf("shellcheck of step %d (%s): %v\n%s", i, s.Name, err, out)
		}
	}
}

// Every input the action declares is used, every input and step output it
// reads is declared (an `inputs.x` typo would be an empty string on
// GitHub), and the steps it names exist.
func TestActionInputsUsedConsistently(t *testing.T) {
	a, text := readAction(t)
	refs := regexp.MustCompile(`\binputs\.([A-Za-z0-9_-]+)`)
	used := map[string]bool{}
	for _, m := range refs.FindAllStringSubmatch(text, -1) {
		used[m[1]] = true
		if _, ok := a.Inputs[m[1]]; !ok {
			t.Errorf("action.yml reads the undeclared input %q", m[1])
		}
	}
	for name := range a.Inputs {
		if !used[name] {
			t.Errorf("the input %q is declared but never used", name)
		}
	}
	ids := map[string]actionStep{}
	for _, s := range a.Runs.Steps {
		if s.ID != "" {
			ids[s.ID] = s
		}
	}
	for _, m := range regexp.MustCompile(`\bsteps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)`).FindAllStringSubmatch(text, -1) {
		step, ok := ids[m[1]]
		if !ok {
			t.Errorf("action.yml reads outputs of the unknown step %q", m[1])
			continue
		}
		if !strings.Contains(step.Run, `echo "`+m[2]+`=`) {
			t.Errorf("step %s never writes the output %q to $GITHUB_OUTPUT", m[1], m[2])
		}
	}
}

// The CNI matrix runs this repository's action, and actionlint checks what
// it passes against action.yml's inputs.
func TestMatrixUsesTheAction(t *testing.T) {
	var wf struct {
		Jobs map[string]struct {
			Steps []actionStep `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(read(t, ".github/workflows/cni-matrix.yml")), &wf); err != nil {
		t.Fatal(err)
	}
	a, _ := readAction(t)
	found := false
	for _, s := range wf.Jobs["suites"].Steps {
		if s.Uses != "./" {
			continue
		}
		found = true
		for name := range s.With {
			if _, ok := a.Inputs[name]; !ok {
				t.Errorf("the matrix passes the unknown input %q", name)
			}
		}
	}
	if !found {
		t.Error("the suites job does not run the action (uses: ./)")
	}
	// A copy of the repository's action beside a workflow that passes an
	// input it lacks.
	project := t.TempDir()
	for _, dir := range []string{".git", filepath.Join(".github", "workflows")} {
		if err := os.MkdirAll(filepath.Join(project, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(project, "action.yml"), []byte(read(t, "action.yml")), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(project, ".github", "workflows", "broken.yml")
	workflow := "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v6\n      - uses: ./\n        with:\n          no-such-input: x\n"
	if err := os.WriteFile(broken, []byte(workflow), 0o644); err != nil {
		t.Fatal(err)
	}
	errs := lint(t, []string{broken})
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "no-such-input") {
		t.Errorf("actionlint on an input action.yml does not declare: %v, want one error naming it", errs)
	}
}
