package controlplane

// KubernetesVersion is the Kubernetes release the local cluster runs. It is
// the release of the k8s.io/api version the main module requires
// (k8s.io/api v0.37.2 -> v1.37.2), so that the control plane matches the
// client libraries; the tools module in cluster/local/kubebin builds it.
// TestKubernetesVersionMatchesModules fails when go.mod and this constant
// disagree. (The version cannot be read from the build information at run
// time: test binaries, which run the suites, carry no dependency list.)
const KubernetesVersion = "v1.37.2"

// apiModule is the main module's dependency whose version decides the
// Kubernetes release.
const apiModule = "k8s.io/api"
