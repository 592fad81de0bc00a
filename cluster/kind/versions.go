package kind

// The kind release and node image are pinned here. KindVersion must equal
// the sigs.k8s.io/kind version in go.mod (the config API types come from
// it) and NodeImage must be that release's default node image: a unit test
// checks both, and that docs/kind.md names them.
const (
	// KindVersion is the kind release that creates the clusters.
	KindVersion = "v0.33.0"
	// KindModule is kind's Go module, built with `go install` when no kind
	// of KindVersion is found.
	KindModule = "sigs.k8s.io/kind"
	// KubernetesVersion is the Kubernetes version of NodeImage.
	KubernetesVersion = "v1.37.0"
	// NodeImage is the kindest/node image of KubernetesVersion that
	// KindVersion was released with, pinned by digest.
	NodeImage = "kindest/node:" + KubernetesVersion + "@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)
