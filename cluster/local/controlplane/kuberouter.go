package controlplane

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// KubeRouterVersion is the kube-router release whose NetworkPolicy
// controller the local cluster runs with --cni kube-router; the tools module
// in cluster/local/kuberouterbin pins it (TestKubeRouterVersionMatchesToolsModule
// checks that they agree, and cluster/cni's KubeRouterFirewallModule names
// the same module version).
const KubeRouterVersion = "v2.1.0"

// EnvKubeRouterPrebuiltDir names a directory with a ready kube-router binary
// of KubeRouterVersion; nothing is built then.
const EnvKubeRouterPrebuiltDir = "NETPOLCHECK_KUBE_ROUTER_BIN_DIR"

// kubeRouterModule is the module the kube-router tools module builds from.
const kubeRouterModule = "github.com/cloudnativelabs/kube-router/v2"

// EnsureKubeRouter returns the path of the kube-router binary of
// opts.Version (default KubeRouterVersion), building it once into the binary
// cache (CacheDir/kube-router-VERSION/bin) from the tools module in
// opts.SourceDir (cluster/local/kuberouterbin), stamped with its version as
// kube-router's own Makefile does. opts.PrebuiltDir, defaulting to
// $NETPOLCHECK_KUBE_ROUTER_BIN_DIR, names a directory with a ready binary
// instead.
func EnsureKubeRouter(ctx context.Context, opts BuildOptions) (string, error) {
	return ensureTool(ctx, opts, KubeRouterVersion, EnvKubeRouterPrebuiltDir, func(version string) toolBuild {
		return toolBuild{
			title: "kube-router", module: kubeRouterModule, version: version,
			commands: []component{{"kube-router", kubeRouterModule + "/cmd/kube-router"}},
			ldflags:  "-s -w -X " + kubeRouterModule + "/pkg/version.Version=" + version,
		}
	}, checkKubeRouterVersion)
}

// checkKubeRouterVersion verifies that the kube-router binary at path
// reports version ("Running PATH version VERSION, built on ...").
func checkKubeRouterVersion(ctx context.Context, path, version string) error {
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("running %s --version: %w", path, err)
	}
	if !strings.Contains(string(out), " version "+version+",") {
		return fmt.Errorf("%s reports %q, want version %s", path, strings.TrimSpace(string(out)), version)
	}
	return nil
}
