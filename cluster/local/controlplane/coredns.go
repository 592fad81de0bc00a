package controlplane

import (
	"context"
	"fmt"
	"os/exec"
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
	return ensureTool(ctx, opts, CoreDNSVersion, EnvCoreDNSPrebuiltDir, func(version string) toolBuild {
		return toolBuild{
			title: "CoreDNS", module: coreDNSModule, version: version,
			commands: []component{{"coredns", coreDNSModule}},
			ldflags:  "-s -w",
		}
	}, checkCoreDNSVersion)
}

// checkCoreDNSVersion verifies that the coredns binary at path reports
// version.
func checkCoreDNSVersion(ctx context.Context, path, version string) error {
	out, err := exec.CommandContext(ctx, path, "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("running %s -version: %w", path, err)
	}
	want := "CoreDNS-" + strings.TrimPrefix(version, "v")
	if first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); first != want {
		return fmt.Errorf("%s reports %q, want %s", path, first, want)
	}
	return nil
}
