package controlplane

import "context"

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
	return ensureKubernetesTool(ctx, opts, EnvAgnhostPrebuiltDir, component{"agnhost", agnhostPackage}, false)
}
