// Package gobuild builds this module's commands for tests that run them as
// separate processes (CNI plugins, probe agents, the local cluster's
// binaries).
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Commands builds the main packages pkgs (import paths or patterns such as
// ".../cmd/...") statically into dir, each binary named after its package's
// last path element, with the go command on PATH (else GOROOT's).
func Commands(dir string, pkgs ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}
