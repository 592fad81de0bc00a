package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// EnvAgnhostPrebuiltDir names a directory with a ready agnhost binary built
// at KubernetesVersion; nothing is built then.
const EnvAgnhostPrebuiltDir = "NETPOLCHECK_AGNHOST_BIN_DIR"

// agnhostPackage is the command of the e2e test image
// registry.k8s.io/e2e-test-images/agnhost, part of k8s.io/kubernetes.
const agnhostPackage = kubernetesModule + "/test/images/agnhost"

// EnsureAgnhost returns the path of agnhost built from k8s.io/kubernetes at
// opts.Version (default KubernetesVersion, the control plane's release),
// building it once into the binary cache (CacheDir/agnhost-VERSION/bin) from
// the same tools module as the control plane (cluster/local/kubebin). It has
// its own cache directory so that adding it never invalidates a cached
// control plane. opts.PrebuiltDir, defaulting to
// $NETPOLCHECK_AGNHOST_BIN_DIR, names a directory with a ready binary
// instead. Like EnsureBinaries, concurrent callers wait for one build.
func EnsureAgnhost(ctx context.Context, opts BuildOptions) (string, error) {
	progress, version, prebuilt := opts.resolve(KubernetesVersion, EnvAgnhostPrebuiltDir)
	if prebuilt != "" {
		path := filepath.Join(prebuilt, "agnhost")
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("prebuilt agnhost: %w", err)
		}
		return path, nil
	}
	root, err := cacheRoot(opts.CacheDir)
	if err != nil {
		return "", err
	}
	tools := toolBuild{
		title: "agnhost of Kubernetes", module: kubernetesModule, version: version,
		commands: []component{{"agnhost", agnhostPackage}},
		ldflags:  "-s -w",
	}
	versionDir := filepath.Join(root, "agnhost-"+version)
	if err := ensureBuilt(ctx, opts.SourceDir, versionDir, tools, progress); err != nil {
		return "", err
	}
	return filepath.Join(versionDir, "bin", "agnhost"), nil
}
