// Package toolpins carries the tools modules of cluster/local (kubebin,
// corednsbin, kuberouterbin, flannelbin, cnipluginsbin, ciliumbin) inside
// the netpolcheck binary, so that a netpolcheck installed with `go install`
// builds the pinned third-party binaries without a source checkout.
//
// Each tools module is a separate Go module (so that the main module never
// depends on k8s.io/kubernetes or a CNI), and a module's zip leaves nested
// modules out; so `make pins` copies each one's go.mod, go.sum and tools.go
// here as pins/NAME/FILE.txt, which this package embeds, and a test checks
// that the copies match the modules. Dir writes a module's files into the
// cache, where the go command builds from them as from the checkout.
package toolpins

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

//go:embed pins
var pins embed.FS

// files are the files of a tools module, as they are named in the module.
var files = []string{"go.mod", "go.sum", "tools.go"}

// Names lists the tools modules carried.
func Names() ([]string, error) {
	entries, err := pins.ReadDir("pins")
	if err != nil {
		return nil, fmt.Errorf("reading the embedded tools modules: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// File returns the embedded content of file (go.mod, go.sum or tools.go) of
// the tools module name.
func File(name, file string) ([]byte, error) {
	b, err := pins.ReadFile("pins/" + name + "/" + file + ".txt")
	if err != nil {
		return nil, fmt.Errorf("tools module %s: %w", name, err)
	}
	return b, nil
}

// Dir returns a directory under cacheRoot that holds the tools module name,
// writing it there first if it is not yet. The directory is named after the
// module's content, so a netpolcheck of other pins never uses it.
func Dir(cacheRoot, name string) (string, error) {
	contents := map[string][]byte{}
	sum := sha256.New()
	for _, f := range files {
		b, err := File(name, f)
		if err != nil {
			return "", err
		}
		contents[f] = b
		fmt.Fprintf(sum, "%s %d\n", f, len(b))
		sum.Write(b)
	}
	parent := filepath.Join(cacheRoot, "toolmods")
	dir := filepath.Join(parent, name+"-"+hex.EncodeToString(sum.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, name+"-writing-")
	if err != nil {
		return "", fmt.Errorf("writing tools module %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	for f, b := range contents {
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return "", fmt.Errorf("writing tools module %s: %w", name, err)
		}
	}
	// Another process that wrote the same module first wins the rename.
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return "", fmt.Errorf("writing tools module %s into %s: %w", name, dir, err)
	}
	return dir, nil
}
