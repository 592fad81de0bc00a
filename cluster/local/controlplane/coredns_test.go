package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCoreDNSVersionMatchesToolsModule checks that the tools module builds
// the CoreDNS release the local cluster expects, and carries its go.sum.
func TestCoreDNSVersionMatchesToolsModule(t *testing.T) {
	const goMod = "../corednsbin/go.mod"
	pinned, err := requiredVersion(goMod, coreDNSModule)
	if err != nil {
		t.Fatal(err)
	}
	if pinned != CoreDNSVersion {
		t.Errorf("%s requires %s %s, want CoreDNSVersion %s", goMod, coreDNSModule, pinned, CoreDNSVersion)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(goMod), "go.sum")); err != nil {
		t.Errorf("the tools module needs its go.sum: %v", err)
	}
}

func writeFakeCoreDNS(t *testing.T, dir, version string) {
	t.Helper()
	script := "#!/bin/sh\necho CoreDNS-" + strings.TrimPrefix(version, "v") + "\necho linux/amd64\n"
	if err := os.WriteFile(filepath.Join(dir, "coredns"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureCoreDNS(t *testing.T) {
	t.Setenv(EnvCoreDNSPrebuiltDir, "")
	ctx := context.Background()

	// A complete cache entry is used without a source directory.
	cache := t.TempDir()
	binDir := filepath.Join(cache, "coredns-"+CoreDNSVersion, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFakeCoreDNS(t, binDir, CoreDNSVersion)
	if _, err := EnsureCoreDNS(ctx, BuildOptions{CacheDir: cache}); err == nil || !strings.Contains(err.Error(), "no source directory") {
		t.Fatalf("a cache without its stamp: err = %v, want a request for the source", err)
	}
	if err := os.WriteFile(filepath.Join(cache, "coredns-"+CoreDNSVersion, buildStamp), []byte(CoreDNSVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := EnsureCoreDNS(ctx, BuildOptions{CacheDir: cache})
	if err != nil || path != filepath.Join(binDir, "coredns") {
		t.Fatalf("EnsureCoreDNS = %q, %v; want the cached binary", path, err)
	}

	// A source pinning another release is refused.
	source := t.TempDir()
	goMod := "module example.com/tools\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns v1.11.0\n"
	if err := os.WriteFile(filepath.Join(source, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCoreDNS(ctx, BuildOptions{SourceDir: source, CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "v1.11.0") {
		t.Fatalf("a source pinning another release: err = %v, want a version mismatch", err)
	}

	// Prebuilt binaries are checked for their version.
	prebuilt := t.TempDir()
	writeFakeCoreDNS(t, prebuilt, CoreDNSVersion)
	if path, err := EnsureCoreDNS(ctx, BuildOptions{PrebuiltDir: prebuilt}); err != nil || path != filepath.Join(prebuilt, "coredns") {
		t.Fatalf("prebuilt: %q, %v", path, err)
	}
	wrong := t.TempDir()
	writeFakeCoreDNS(t, wrong, "v1.11.0")
	t.Setenv(EnvCoreDNSPrebuiltDir, wrong)
	if _, err := EnsureCoreDNS(ctx, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "1.11.0") {
		t.Fatalf("prebuilt of another release: err = %v, want a version mismatch", err)
	}
}
