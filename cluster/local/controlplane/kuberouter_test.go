package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
)

// TestKubeRouterVersionMatchesToolsModule checks that the tools module
// builds the kube-router release the local cluster expects, and that its
// go.sum pins the same module zip as the installer that reads kube-router's
// manifest from it.
func TestKubeRouterVersionMatchesToolsModule(t *testing.T) {
	const goMod = "../kuberouterbin/go.mod"
	pinned, err := requiredVersion(goMod, kubeRouterModule)
	if err != nil {
		t.Fatal(err)
	}
	if pinned != KubeRouterVersion {
		t.Errorf("%s requires %s %s, want KubeRouterVersion %s", goMod, kubeRouterModule, pinned, KubeRouterVersion)
	}
	m := cni.KubeRouterFirewallModule
	if m.Path != kubeRouterModule || m.Version != KubeRouterVersion {
		t.Errorf("the firewall installer reads %s, the local cluster builds %s@%s", m, kubeRouterModule, KubeRouterVersion)
	}
	sum, err := os.ReadFile(filepath.Join(filepath.Dir(goMod), "go.sum"))
	if err != nil {
		t.Fatalf("the tools module needs its go.sum: %v", err)
	}
	if line := m.Path + " " + m.Version + " " + m.Sum; !strings.Contains(string(sum), line+"\n") {
		t.Errorf("the tools module's go.sum lacks %q: the installer's pinned hash and the build disagree", line)
	}
}

func writeFakeKubeRouter(t *testing.T, dir, version string) {
	t.Helper()
	script := "#!/bin/sh\necho \"Running $0 version " + version + ", built on , go1.26\" >&2\n"
	if err := os.WriteFile(filepath.Join(dir, "kube-router"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureKubeRouter(t *testing.T) {
	t.Setenv(EnvKubeRouterPrebuiltDir, "")
	ctx := context.Background()
	cache := t.TempDir()
	versionDir := filepath.Join(cache, "kube-router-"+KubeRouterVersion)
	if err := os.MkdirAll(filepath.Join(versionDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFakeKubeRouter(t, filepath.Join(versionDir, "bin"), KubeRouterVersion)
	if _, err := EnsureKubeRouter(ctx, BuildOptions{CacheDir: cache}); err == nil || !strings.Contains(err.Error(), "no source directory") {
		t.Fatalf("a cache without its stamp: err = %v, want a request for the source", err)
	}
	if err := os.WriteFile(filepath.Join(versionDir, buildStamp), []byte(KubeRouterVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if path, err := EnsureKubeRouter(ctx, BuildOptions{CacheDir: cache}); err != nil || path != filepath.Join(versionDir, "bin", "kube-router") {
		t.Fatalf("EnsureKubeRouter = %q, %v; want the cached binary", path, err)
	}
	prebuilt := t.TempDir()
	writeFakeKubeRouter(t, prebuilt, KubeRouterVersion)
	if path, err := EnsureKubeRouter(ctx, BuildOptions{PrebuiltDir: prebuilt}); err != nil || path != filepath.Join(prebuilt, "kube-router") {
		t.Fatalf("prebuilt: %q, %v", path, err)
	}
	wrong := t.TempDir()
	writeFakeKubeRouter(t, wrong, "v2.0.1")
	t.Setenv(EnvKubeRouterPrebuiltDir, wrong)
	if _, err := EnsureKubeRouter(ctx, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "want version "+KubeRouterVersion) {
		t.Fatalf("prebuilt of another release: err = %v, want a version mismatch", err)
	}
}
