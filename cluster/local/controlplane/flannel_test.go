package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
)

// The Flannel tools module builds the release whose manifest the installer
// reads (same version, same zip hash in go.sum), and the CNI plugins tools
// module the plugins' release.
func TestFlannelVersionMatchesToolsModule(t *testing.T) {
	for _, tc := range []struct{ goMod, module, version string }{
		{"../flannelbin/go.mod", flannelModule, FlannelVersion},
		{"../cnipluginsbin/go.mod", cniPluginsModule, CNIPluginsVersion},
	} {
		pinned, err := requiredVersion(tc.goMod, tc.module)
		if err != nil {
			t.Fatal(err)
		}
		if pinned != tc.version {
			t.Errorf("%s requires %s %s, want %s", tc.goMod, tc.module, pinned, tc.version)
		}
	}
	m := cni.FlannelModule
	if m.Path != flannelModule || m.Version != FlannelVersion {
		t.Errorf("the Flannel installer reads %s, the local cluster builds %s@%s", m, flannelModule, FlannelVersion)
	}
	sum, err := os.ReadFile("../flannelbin/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if line := m.Path + " " + m.Version + " " + m.Sum; !strings.Contains(string(sum), line+"\n") {
		t.Errorf("the tools module's go.sum lacks %q", line)
	}
}

// A prebuilt directory is used as it is, once flanneld reports the
// release; one of another release is refused.
func TestEnsureFlannelPrebuilt(t *testing.T) {
	dir := t.TempDir()
	write := func(name, script string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("flanneld", "echo "+FlannelVersion)
	write("install-conf", "exit 0")
	got, err := EnsureFlannel(context.Background(), BuildOptions{PrebuiltDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got.Flanneld != filepath.Join(dir, "flanneld") || got.InstallConf != filepath.Join(dir, "install-conf") {
		t.Errorf("got %+v", got)
	}
	write("flanneld", "echo v0.1.0")
	if _, err := EnsureFlannel(context.Background(), BuildOptions{PrebuiltDir: dir}); err == nil || !strings.Contains(err.Error(), "want version "+FlannelVersion) {
		t.Errorf("another release: error %v", err)
	}
}
