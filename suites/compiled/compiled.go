// Package compiled finds the suites' compiled form (Ginkgo suites built with
// `go test -c` into SUITE.test) for `netpolcheck run`: next to the running
// executable (`make build` puts them in bin/), else in the cache, where they
// are built from the module source of the release the executable was
// installed from (`go install ...@VERSION`), with the go command.
package compiled

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

// Suites are the suites' names, in run order; suite NAME is the package
// suites/NAME of the module.
func Suites() []string { return []string{"recipes", "conformance", "generated"} }

// Binary is the path of a suite's compiled form in a suites directory:
// NAME/NAME.test (a directory per suite: Ginkgo names a compiled suite's
// reports after its directory, so suites sharing one would overwrite each
// other's).
func Binary(suite string) string { return filepath.Join(suite, suite+".test") }

// DirNextTo is the suites directory next to an executable's directory:
// bin/suites for bin/netpolcheck.
func DirNextTo(exeDir string) string { return filepath.Join(exeDir, "suites") }

// GinkgoTestsOnly is the -test.run pattern that runs only the suites' Ginkgo
// entry points in a compiled suite, not the package's other Go tests (which
// read files of the source tree).
const GinkgoTestsOnly = "^Test(Recipes|Conformance|Generated)$"

// Locator says where the compiled suites may be.
type Locator struct {
	// ExeDir is the directory of the running netpolcheck executable; the
	// suites next to it are in DirNextTo(ExeDir).
	ExeDir string
	// CacheRoot is netpolcheck's cache; suites of module version V are
	// built into CacheRoot/suites-V.
	CacheRoot string
	// ModulePath and Version are the main module of the executable's build
	// information (runtime/debug.ReadBuildInfo).
	ModulePath, Version string
	// GoTool is the go command; empty when there is none.
	GoTool string
	// Progress receives what is built; nil discards it.
	Progress io.Writer
}

// Find returns the directory that holds every suite's binary:
// DirNextTo(ExeDir) when it does, else the cache's directory of the module version, building the
// suites there first when they are not yet (a released version only, with
// the go command).
func (l Locator) Find(ctx context.Context) (string, error) {
	if next := DirNextTo(l.ExeDir); complete(next) {
		return next, nil
	}
	if !downloadable(l.Version) {
		return "", fmt.Errorf("no compiled suites (%s) next to %s, and this build (%s %s) is no released module version to build them from: run `make build` in the checkout (it writes them to bin/), or give --suites-dir",
			strings.Join(binaries(), ", "), l.ExeDir, l.ModulePath, l.Version)
	}
	if l.CacheRoot == "" {
		return "", fmt.Errorf("no compiled suites next to %s, and no cache directory to build them into: set %s or give --suites-dir", l.ExeDir, "NETPOLCHECK_CACHE")
	}
	dir := filepath.Join(l.CacheRoot, "suites-"+l.Version)
	if complete(dir) {
		return dir, nil
	}
	if l.GoTool == "" {
		return "", fmt.Errorf("no compiled suites in %s or %s, and no go command on PATH to build them from %s@%s", l.ExeDir, dir, l.ModulePath, l.Version)
	}
	if err := l.build(ctx, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// complete reports whether dir holds every suite's binary.
func complete(dir string) bool {
	for _, b := range binaries() {
		info, err := os.Stat(filepath.Join(dir, b))
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return dir != ""
}

func binaries() []string {
	var names []string
	for _, s := range Suites() {
		names = append(names, Binary(s))
	}
	return names
}

// downloadable reports whether version names a module version the module
// proxy can serve: not a checkout's "(devel)" or a build of modified
// sources ("+dirty").
func downloadable(version string) bool {
	return version != "" && version != "(devel)" && !strings.Contains(version, "+dirty") &&
		module.Check("example.com/m", version) == nil
}

// build downloads the module's source with `go mod download` and compiles
// every suite from it with `go test -c` into dir (through a temporary
// directory: a build cut short leaves no suites behind).
func (l Locator) build(ctx context.Context, dir string) error {
	fmt.Fprintf(l.progress(), "building the suites of %s@%s into %s (once)\n", l.ModulePath, l.Version, dir)
	source, err := l.download(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.CacheRoot, 0o755); err != nil {
		return fmt.Errorf("creating the cache: %w", err)
	}
	tmp, err := os.MkdirTemp(l.CacheRoot, "suites-build-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, s := range Suites() {
		if err := os.MkdirAll(filepath.Join(tmp, s), 0o755); err != nil {
			return fmt.Errorf("creating a build directory: %w", err)
		}
		cmd := exec.CommandContext(ctx, l.GoTool, "test", "-c", "-trimpath", "-o", filepath.Join(tmp, Binary(s)), "./suites/"+s)
		cmd.Dir = source
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c ./suites/%s in %s: %w\n%s", s, source, err, out)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("moving the suites into %s: %w", dir, err)
	}
	return nil
}

// download returns the directory of the module's source in the module cache.
func (l Locator) download(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, l.GoTool, "mod", "download", "-json", l.ModulePath+"@"+l.Version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var got struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &got); jerr != nil && err == nil {
		err = fmt.Errorf("reading its output: %w", jerr)
	}
	if got.Error != "" {
		err = errors.New(got.Error)
	}
	if err == nil && got.Dir == "" {
		err = errors.New("it gave no source directory")
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w %s", l.ModulePath, l.Version, err, strings.TrimSpace(stderr.String()))
	}
	return got.Dir, nil
}

func (l Locator) progress() io.Writer {
	if l.Progress == nil {
		return io.Discard
	}
	return l.Progress
}
