package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/internal/gobuild"
	"github.com/netpolcheck/netpolcheck/suites/compiled"
)

// buildWithSuites builds the project's commands into a temporary
// directory, with the given suites compiled next to them as make build lays
// them out (suites/NAME/NAME.test), and returns the path of its
// netpolcheck. A local cluster that this netpolcheck brings up runs the
// project's image from that directory.
func buildWithSuites(t *testing.T, suites ...string) string {
	t.Helper()
	bin := t.TempDir()
	if err := gobuild.Commands(bin, "github.com/netpolcheck/netpolcheck/cmd/..."); err != nil {
		t.Fatal(err)
	}
	for _, s := range suites {
		build := exec.Command("go", "test", "-c", "-o", filepath.Join(compiled.DirNextTo(bin), compiled.Binary(s)), "github.com/netpolcheck/netpolcheck/suites/"+s)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("compiling the %s suite: %v\n%s", s, err, out)
		}
	}
	return filepath.Join(bin, "netpolcheck")
}

// localUp brings a 2-node local cluster named prefix and this process's
// PID up with netpolcheck local up, takes it down when the test ends, and
// returns the cluster's name and admin kubeconfig.
func localUp(t *testing.T, netpolcheck, prefix string) (name, kubeconfigPath string) {
	t.Helper()
	name = fmt.Sprintf("%s%d", prefix, os.Getpid())
	state := filepath.Join(t.TempDir(), "state")
	up := exec.Command(netpolcheck, "local", "up", "--name", name, "--state-dir", state, "--nodes", "2")
	up.Stderr = os.Stderr
	t.Cleanup(func() {
		if out, err := exec.Command(netpolcheck, "local", "down", "--name", name, "--state-dir", state).CombinedOutput(); err != nil {
			t.Errorf("local down: %v\n%s", err, out)
		}
	})
	out, err := up.Output()
	if err != nil {
		t.Fatalf("local up: %v", err)
	}
	return name, strings.TrimSpace(string(out))
}
