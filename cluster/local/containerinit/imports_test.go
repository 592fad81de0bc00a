package containerinit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallCommand: the shim starts once per container, so its command
// imports nothing heavy: no package of the module but this one, and
// nothing outside the standard library but x/sys (no Kubernetes client, whose
// package initialisation alone costs milliseconds per start).
func TestSmallCommand(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/netpolcheck/netpolcheck/cmd/netpolcheck-container-init").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "github.com/netpolcheck/netpolcheck/cmd/netpolcheck-container-init",
			pkg == "github.com/netpolcheck/netpolcheck/cluster/local/containerinit",
			strings.HasPrefix(pkg, "golang.org/x/sys/"):
		default:
			t.Errorf("netpolcheck-container-init depends on %s", pkg)
		}
	}
}
