package controlplane

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// CoreDNSVersion is the CoreDNS release the local cluster runs as its
// cluster DNS; the tools module in cluster/local/corednsbin pins it
// (TestCoreDNSVersionMatchesToolsModule checks that they agree).
const CoreDNSVersion = "v1.15.0"

// EnvCoreDNSPrebuiltDir names a directory with a ready coredns binary of
// CoreDNSVersion; nothing is built then.
const EnvCoreDNSPrebuiltDir = "NETPOLCHECK_COREDNS_BIN_DIR"

// coreDNSModule is the module the CoreDNS tools module builds from.
const coreDNSModule = "github.com/coredns/coredns"

// EnsureCoreDNS returns the path of the coredns binary of opts.Version
// (default CoreDNSVersion), building it once into the binary cache
// (CacheDir/coredns-VERSION/bin) from the tools module in opts.SourceDir
// (cluster/local/corednsbin) when it is not there yet. opts.PrebuiltDir,
// defaulting to $NETPOLCHECK_COREDNS_BIN_DIR, names a directory with a ready
// binary instead. Like EnsureBinaries, concurrent callers wait for one build.
func EnsureCoreDNS(ctx context.Context, opts BuildOptions) (string, error) {
	progress, version, prebuilt := opts.resolve(CoreDNSVersion, EnvCoreDNSPrebuiltDir)
	if prebuilt != "" {
		return checkPrebuiltCoreDNS(ctx, prebuilt, version)
	}
	root, err := CacheRoot(opts.CacheDir)
	if err != nil {
		return "", err
	}
	tools := toolBuild{
		title: "CoreDNS", module: coreDNSModule, version: version,
		commands: []component{{"coredns", coreDNSModule}},
		ldflags:  "-s -w",
	}
	versionDir := filepath.Join(root, "coredns-"+version)
	if err := ensureBuilt(ctx, opts.SourceDir, versionDir, tools, progress); err != nil {
		return "", err
	}
	return filepath.Join(versionDir, "bin", "coredns"), nil
}

// checkPrebuiltCoreDNS verifies that dir holds a coredns binary that reports
// version.
func checkPrebuiltCoreDNS(ctx context.Context, dir, version string) (string, error) {
	path := filepath.Join(dir, "coredns")
	out, err := exec.CommandContext(ctx, path, "-version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("prebuilt CoreDNS: running %s -version: %w", path, err)
	}
	want := "CoreDNS-" + strings.TrimPrefix(version, "v")
	if first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); first != want {
		return "", fmt.Errorf("prebuilt CoreDNS: %s reports %q, want %s", path, first, want)
	}
	return path, nil
}
