package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Environment variables that EnsureBinaries consults when the matching
// BuildOptions field is empty.
const (
	// EnvCacheDir overrides the cache root (default: netpolcheck under the
	// user cache directory, ${XDG_CACHE_HOME:-$HOME/.cache}/netpolcheck).
	EnvCacheDir = "NETPOLCHECK_CACHE"
	// EnvPrebuiltDir names a directory with ready kube-apiserver,
	// kube-controller-manager, kube-scheduler and kube-proxy binaries of the
	// expected version; nothing is built then.
	EnvPrebuiltDir = "NETPOLCHECK_KUBE_BIN_DIR"
)

// kubernetesModule is the module the tools module builds the commands from.
const kubernetesModule = "k8s.io/kubernetes"

// buildStamp is written next to the bin directory once every binary of a
// version is built; binaries without it are rebuilt.
const buildStamp = "build-complete"

// Binaries are the paths of the Kubernetes binaries of one release.
type Binaries struct {
	// Version is the Kubernetes release, for example v1.37.2.
	Version           string
	APIServer         string
	ControllerManager string
	Scheduler         string
	Proxy             string
}

// BuildOptions say where EnsureBinaries finds or builds the binaries.
type BuildOptions struct {
	// SourceDir is the directory of the tools module that pins the
	// Kubernetes release (cluster/local/kubebin in the repository). It is
	// needed only when the binaries are not cached yet.
	SourceDir string
	// PrebuiltDir holds ready binaries; when set, nothing is built.
	// Defaults to $NETPOLCHECK_KUBE_BIN_DIR.
	PrebuiltDir string
	// CacheDir is the cache root; binaries go to
	// CacheDir/kubernetes-VERSION/bin. Defaults to $NETPOLCHECK_CACHE, then
	// to netpolcheck under the user cache directory.
	CacheDir string
	// Version is the Kubernetes release; defaults to KubernetesVersion.
	Version string
	// Progress receives human-readable progress messages; nil discards them.
	Progress io.Writer
}

// component is one binary: its file name and its package (in
// k8s.io/kubernetes, or the tools module's pinned module).
type component struct {
	name string
	pkg  string
}

func components() []component {
	return []component{
		{"kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"},
		{"kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"},
		{"kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"},
		{"kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy"},
	}
}

func binariesIn(dir, version string) Binaries {
	return Binaries{
		Version:           version,
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Proxy:             filepath.Join(dir, "kube-proxy"),
	}
}

// resolve applies the defaults: no progress output, the given version, and
// the prebuilt directory from the environment variable env.
func (o BuildOptions) resolve(version, env string) (progress io.Writer, v, prebuilt string) {
	progress, v, prebuilt = o.Progress, o.Version, o.PrebuiltDir
	if progress == nil {
		progress = io.Discard
	}
	if v == "" {
		v = version
	}
	if prebuilt == "" {
		prebuilt = os.Getenv(env)
	}
	return progress, v, prebuilt
}

// EnsureBinaries returns the control-plane binaries of the Kubernetes release,
// building them once into the cache when they are not there yet. A build
// takes several minutes and is announced on opts.Progress; concurrent calls
// (also from other processes) wait for one build instead of building twice.
func EnsureBinaries(ctx context.Context, opts BuildOptions) (Binaries, error) {
	progress, version, prebuilt := opts.resolve(KubernetesVersion, EnvPrebuiltDir)
	if prebuilt != "" {
		return checkPrebuilt(ctx, prebuilt, version)
	}

	cacheRoot, err := CacheRoot(opts.CacheDir)
	if err != nil {
		return Binaries{}, err
	}
	tools := toolBuild{
		title: "Kubernetes", module: kubernetesModule, version: version,
		commands: components(), ldflags: versionLDFlags(version),
	}
	versionDir := filepath.Join(cacheRoot, "kubernetes-"+version)
	if err := ensureBuilt(ctx, opts.SourceDir, versionDir, tools, progress); err != nil {
		return Binaries{}, err
	}
	return binariesIn(filepath.Join(versionDir, "bin"), version), nil
}

// EnsureKubectl returns kubectl of the Kubernetes release, built once from
// the same tools module into its own cache directory
// (CacheDir/kubectl-VERSION/bin), so that the control-plane build stays
// as it is. With a prebuilt directory, its kubectl is used.
func EnsureKubectl(ctx context.Context, opts BuildOptions) (string, error) {
	return ensureKubernetesTool(ctx, opts, EnvPrebuiltDir, component{"kubectl", "k8s.io/kubernetes/cmd/kubectl"}, false)
}

// ensureKubernetesTool returns the path of one command (or, with test, one
// compiled test binary) of k8s.io/kubernetes at opts.Version, built once
// from the tools module into its own cache directory
// (CacheDir/NAME-VERSION/bin), so that adding a tool never invalidates the
// cached control plane. opts.PrebuiltDir, defaulting to $envPrebuilt, names
// a directory that holds it ready instead.
func ensureKubernetesTool(ctx context.Context, opts BuildOptions, envPrebuilt string, c component, test bool) (string, error) {
	return ensureTool(ctx, opts, KubernetesVersion, envPrebuilt, func(version string) toolBuild {
		return toolBuild{
			title: c.name + " of Kubernetes", module: kubernetesModule, version: version,
			commands: []component{c}, ldflags: versionLDFlags(version), test: test,
		}
	}, nil)
}

// ensureTool returns the path of the one command of the build that
// tools(version) describes, at opts.Version (default defaultVersion), built
// once from the tools module in opts.SourceDir into its own cache directory
// (CacheDir/NAME-VERSION/bin, NAME the command without a .test suffix).
// opts.PrebuiltDir, defaulting to $envPrebuilt, names a directory that
// holds it ready instead, which checkPrebuilt (when not nil) verifies is of
// the version. Concurrent callers wait for one build.
func ensureTool(ctx context.Context, opts BuildOptions, defaultVersion, envPrebuilt string,
	tools func(version string) toolBuild, checkPrebuilt func(ctx context.Context, path, version string) error) (string, error) {
	progress, version, prebuilt := opts.resolve(defaultVersion, envPrebuilt)
	build := tools(version)
	if len(build.commands) != 1 {
		return "", fmt.Errorf("building %s: want one command, not %d", build.title, len(build.commands))
	}
	name := build.commands[0].name
	if prebuilt != "" {
		path := filepath.Join(prebuilt, name)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("prebuilt %s: %w", name, err)
		}
		if checkPrebuilt != nil {
			if err := checkPrebuilt(ctx, path, version); err != nil {
				return "", fmt.Errorf("prebuilt %s: %w", build.title, err)
			}
		}
		return path, nil
	}
	root, err := CacheRoot(opts.CacheDir)
	if err != nil {
		return "", err
	}
	versionDir := filepath.Join(root, strings.TrimSuffix(name, ".test")+"-"+version)
	if err := ensureBuilt(ctx, opts.SourceDir, versionDir, build, progress); err != nil {
		return "", err
	}
	return filepath.Join(versionDir, "bin", name), nil
}

// toolBuild is one set of commands built from a tools module that pins
// module at version.
type toolBuild struct {
	// title names the release in messages ("Kubernetes", "CoreDNS").
	title    string
	module   string
	version  string
	commands []component
	ldflags  string
	// tags are the build tags of every command (go build -tags).
	tags []string
	// test builds the one package of commands as a test binary (go test -c).
	test bool
	// cgo builds with cgo (CGO_ENABLED=1), for commands that do not build
	// without it.
	cgo bool
}

// ensureBuilt builds the commands of tools into versionDir/bin unless a
// complete build is there, holding a lock so that concurrent callers (also
// in other processes) wait for one build instead of building twice.
func ensureBuilt(ctx context.Context, sourceDir, versionDir string, tools toolBuild, progress io.Writer) error {
	if built(versionDir, tools) {
		return nil
	}
	if err := os.MkdirAll(versionDir, 0o755); err != nil {
		return fmt.Errorf("creating binary cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(versionDir, "build.lock"), func() {
		fmt.Fprintf(progress, "waiting for another process that builds %s %s in %s...\n", tools.title, tools.version, versionDir)
	})
	if err != nil {
		return fmt.Errorf("locking binary cache: %w", err)
	}
	defer unlock()
	if built(versionDir, tools) {
		return nil
	}
	return build(ctx, sourceDir, versionDir, tools, progress)
}

// CacheRoot is the root of netpolcheck's cache: configured when set, else
// $NETPOLCHECK_CACHE, else netpolcheck under the user cache directory
// (${XDG_CACHE_HOME:-$HOME/.cache}/netpolcheck).
func CacheRoot(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if dir := os.Getenv(EnvCacheDir); dir != "" {
		return dir, nil
	}
	userCache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the binary cache (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(userCache, "netpolcheck"), nil
}

// built reports whether versionDir holds a complete build of tools.
func built(versionDir string, tools toolBuild) bool {
	stamp, err := os.ReadFile(filepath.Join(versionDir, buildStamp))
	if err != nil || strings.TrimSpace(string(stamp)) != tools.version {
		return false
	}
	for _, c := range tools.commands {
		if _, err := os.Stat(filepath.Join(versionDir, "bin", c.name)); err != nil {
			return false
		}
	}
	return true
}

// build compiles every command of tools from the tools module in sourceDir
// into a temporary directory, then moves them into versionDir/bin and writes
// the stamp, so an interrupted build never looks complete.
func build(ctx context.Context, sourceDir, versionDir string, tools toolBuild, progress io.Writer) error {
	version := tools.version
	if sourceDir == "" {
		return fmt.Errorf("the binaries of %s %s are not in the cache %s and no source directory was given to build them (or give prebuilt ones)", tools.title, version, versionDir)
	}
	if err := checkSourceVersion(sourceDir, tools); err != nil {
		return err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building %s %s needs the go command (or give prebuilt binaries): %w", tools.title, version, err)
	}
	tmpDir, err := os.MkdirTemp(versionDir, "build-")
	if err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(tmpDir)

	names := make([]string, 0, len(tools.commands))
	flags := []string{"-trimpath", "-ldflags", tools.ldflags}
	if len(tools.tags) > 0 {
		flags = append(flags, "-tags", strings.Join(tools.tags, ","))
	}
	args := append(append([]string{"build"}, flags...), "-o", tmpDir+string(filepath.Separator))
	if tools.test {
		if len(tools.commands) != 1 {
			return fmt.Errorf("building %s: a test binary is built from exactly one package", tools.title)
		}
		args = append(append([]string{"test", "-c"}, flags...), "-o", filepath.Join(tmpDir, tools.commands[0].name))
	}
	for _, c := range tools.commands {
		names = append(names, c.name)
		args = append(args, c.pkg)
	}
	fmt.Fprintf(progress, "building %s %s (first run only, several minutes)...\n", strings.Join(names, ", "), version)
	started := time.Now()

	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = sourceDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{false: "0", true: "1"}[tools.cgo], "GOWORK=off")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s %s in %s: %w\n%s", tools.title, version, sourceDir, err, output.String())
	}

	binDir := filepath.Join(versionDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", binDir, err)
	}
	for _, c := range tools.commands {
		// go build -o DIR/ names a command after its package's directory
		// (cilium's daemon is cilium-agent); go test -c -o FILE as given.
		output := path.Base(c.pkg)
		if tools.test {
			output = c.name
		}
		if err := os.Rename(filepath.Join(tmpDir, output), filepath.Join(binDir, c.name)); err != nil {
			return fmt.Errorf("moving %s into the cache: %w", c.name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(versionDir, buildStamp), []byte(version+"\n"), 0o644); err != nil {
		return fmt.Errorf("marking the build complete: %w", err)
	}
	fmt.Fprintf(progress, "built %s %s into %s in %s\n", tools.title, version, binDir, time.Since(started).Round(time.Second))
	return nil
}

// versionLDFlags stamps the release into the binaries, so that they report
// it in --version and in the API server's /version, and strips the symbol
// table and debug information, as release builds do.
func versionLDFlags(version string) string {
	const pkg = "k8s.io/component-base/version"
	major, minor, _ := strings.Cut(strings.TrimPrefix(semver.MajorMinor(version), "v"), ".")
	return strings.Join([]string{
		"-s", "-w",
		"-X", pkg + ".gitVersion=" + version,
		"-X", pkg + ".gitMajor=" + major,
		"-X", pkg + ".gitMinor=" + minor,
		"-X", pkg + ".gitTreeState=clean",
	}, " ")
}

// checkSourceVersion verifies that the tools module in sourceDir pins the
// module of tools at its version, so a build is never cached under the wrong
// release.
func checkSourceVersion(sourceDir string, tools toolBuild) error {
	pinned, err := requiredVersion(filepath.Join(sourceDir, "go.mod"), tools.module)
	if err != nil {
		return err
	}
	if pinned != tools.version {
		return fmt.Errorf("%s/go.mod requires %s %s, but this program uses %s %s: update one of them", sourceDir, tools.module, pinned, tools.title, tools.version)
	}
	return nil
}

// requiredVersion returns the version of module that the go.mod file at path
// requires.
func requiredVersion(path, module string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	file, err := modfile.ParseLax(path, data, nil)
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", path, err)
	}
	for _, req := range file.Require {
		if req.Mod.Path == module {
			return req.Mod.Version, nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", path, module)
}

// checkPrebuilt verifies that dir holds every binary and that each reports
// the expected version.
func checkPrebuilt(ctx context.Context, dir, version string) (Binaries, error) {
	var problems []error
	for _, c := range components() {
		path := filepath.Join(dir, c.name)
		out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
		if err != nil {
			problems = append(problems, fmt.Errorf("running %s --version: %w", path, err))
			continue
		}
		if got := strings.TrimSpace(string(out)); got != "Kubernetes "+version {
			problems = append(problems, fmt.Errorf("%s reports %q, want Kubernetes %s", path, got, version))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return Binaries{}, fmt.Errorf("prebuilt binaries in %s: %w", dir, err)
	}
	return binariesIn(dir, version), nil
}
