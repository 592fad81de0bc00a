package cni

import "github.com/netpolcheck/netpolcheck/internal/gomodule"

// Every third-party CNI version netpolcheck installs is pinned here, and
// nowhere else. To bump one: change the constant, run `go test
// ./cluster/cni` (it checks the shape of every URL, and that docs/kind.md
// names every pin), then run the CNI matrix workflow. Installers check that
// the fetched manifest still holds the objects they patch, so an upstream
// layout change fails loudly instead of installing something unpatched.
const (
	// CalicoVersion is the Calico release whose manifests install Calico
	// and Canal (Calico policy on a Flannel network).
	CalicoVersion = "v3.33.1"
	// CiliumVersion is the Cilium release (no leading v, as its chart
	// names it); the chart is read from the module github.com/cilium/cilium
	// at v+CiliumVersion, which cluster/local/ciliumbin also pins.
	CiliumVersion = "1.20.2"
	// CiliumModuleSum is the h1: hash of that module's zip, as go.sum has it.
	CiliumModuleSum = "h1:dqiEGIcXc+gqCLYG/l7VCFJ8GHyb4HUrwbZOpkX5dL8="
	// FlannelVersion is the Flannel release.
	FlannelVersion = "v0.28.10"
	// KubeRouterVersion is the kube-router release kind installs (pod
	// network and policy); its manifest names the image without a tag, so
	// the installer pins the image to this version. v2.9.0 or later: earlier
	// releases have published advisories in the parts this mode runs besides
	// the policy controller (the BGP router's unauthenticated GoBGP admin
	// port) and in the service proxy (externalIPs).
	KubeRouterVersion = "v2.9.0"
)

// KubeRouterFirewallModule is the kube-router module whose firewall-only
// DaemonSet (KubeRouterFirewallManifest) the local cluster installs, and
// whose kube-router command cluster/local/kuberouterbin builds (its go.mod
// and go.sum pin the same version and hash). v2.1.0 is the only version of
// the module the Go module proxy serves to the machine the project is
// tested on; its published advisories (the service proxy's externalIPs,
// the BGP router's unauthenticated GoBGP admin port) are in parts that
// firewall-only mode does not run.
var KubeRouterFirewallModule = gomodule.Module{
	Path:    "github.com/cloudnativelabs/kube-router/v2",
	Version: "v2.1.0",
	Sum:     "h1:xWsptKtmZ44L+NjwFKoFAFlVdxCz8fka9A/eYJe95Ok=",
}

// FlannelModule is the Flannel module whose manifest (FlannelManifest) the
// Flannel installer reads from the module zip, on kind and on the local
// cluster, and whose flanneld cluster/local/flannelbin builds (its go.mod
// and go.sum pin the same version and hash).
var FlannelModule = gomodule.Module{
	Path:    "github.com/flannel-io/flannel",
	Version: FlannelVersion,
	Sum:     "h1:jt+uW6XVV01MBb3YFahG7Ue9UE3W6zlNlJMf3JtdcXI=",
}

// FlannelManifest is Flannel's manifest (kube-flannel namespace), a file of
// FlannelModule.
const FlannelManifest = "Documentation/kube-flannel.yml"

// FlannelConflist is the CNI configuration the Flannel manifest's
// install-cni init container writes on every node.
const FlannelConflist = "/etc/cni/net.d/10-flannel.conflist"

// KubeRouterFirewallManifest is kube-router's manifest that runs it as a
// NetworkPolicy controller alone (--run-firewall=true --run-router=false
// --run-service-proxy=false), a file of KubeRouterFirewallModule.
const KubeRouterFirewallManifest = "daemonset/kube-router-firewall-daemonset.yaml"

// KubeRouterFirewallConflist is the CNI configuration the firewall
// manifest's install-cni init container writes on every node (a bridge
// conflist without a subnet: with --run-router=false nothing fills it in).
const KubeRouterFirewallConflist = "/etc/cni/net.d/10-kuberouter.conflist"

// Where the pinned releases come from.
const (
	// CalicoManifestURL is Calico's self-contained manifest (Kubernetes API
	// datastore, calico-node DaemonSet, calico-kube-controllers).
	CalicoManifestURL = "https://raw.githubusercontent.com/projectcalico/calico/" + CalicoVersion + "/manifests/calico.yaml"
	// CanalManifestURL is Calico's Canal manifest (Flannel VXLAN network,
	// Calico NetworkPolicy).
	CanalManifestURL = "https://raw.githubusercontent.com/projectcalico/calico/" + CalicoVersion + "/manifests/canal.yaml"
	// KubeRouterManifestURL is kube-router's manifest for kubeadm clusters
	// that keep kube-proxy (pod network and NetworkPolicy, no service proxy).
	KubeRouterManifestURL = "https://raw.githubusercontent.com/cloudnativelabs/kube-router/" + KubeRouterVersion + "/daemonset/kubeadm-kuberouter.yaml"
	// KubeRouterImage is the image the kube-router installer pins.
	KubeRouterImage = "docker.io/cloudnativelabs/kube-router:" + KubeRouterVersion
)
