package controlplane

import "context"

// EnvE2EPrebuiltDir names a directory with a ready e2e.test built at
// KubernetesVersion; nothing is built then.
const EnvE2EPrebuiltDir = "NETPOLCHECK_E2E_BIN_DIR"

// EnsureE2ETest returns the path of upstream's end-to-end test binary,
// e2e.test, compiled from k8s.io/kubernetes/test/e2e at opts.Version
// (default KubernetesVersion, the control plane's release) with the same
// tools module as the control plane, once, into CacheDir/e2e-VERSION/bin.
// opts.PrebuiltDir, defaulting to $NETPOLCHECK_E2E_BIN_DIR, names a
// directory with a ready e2e.test instead.
func EnsureE2ETest(ctx context.Context, opts BuildOptions) (string, error) {
	return ensureKubernetesTool(ctx, opts, EnvE2EPrebuiltDir, component{"e2e.test", kubernetesModule + "/test/e2e"}, true)
}

// EnsureGinkgo returns the path of the Ginkgo CLI at the version that
// k8s.io/kubernetes at opts.Version pins (the Ginkgo e2e.test is compiled
// with, so that the CLI and the binary it runs in parallel speak the same
// protocol), built once from the tools module into
// CacheDir/ginkgo-VERSION/bin.
func EnsureGinkgo(ctx context.Context, opts BuildOptions) (string, error) {
	return ensureKubernetesTool(ctx, opts, EnvE2EPrebuiltDir, component{"ginkgo", "github.com/onsi/ginkgo/v2/ginkgo"}, false)
}
