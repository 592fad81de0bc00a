package local

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodeagent"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// SubnetBridgeBinary is the project's stand-in for Flannel's CNI plugin
// (package subnetbridge), which the Flannel choices map Flannel's CNI
// plugin image to.
const SubnetBridgeBinary = "netpolcheck-subnet-bridge"

// flannelInterface is the node interface flanneld sends vxlan (or routes
// host-gw) on: the node's underlay link. The nodes have no default route,
// from which flanneld would otherwise pick it.
const flannelInterface = "eth0"

// flannelInstaller is the Flannel installer shared with kind, for the local
// cluster's nodes: they have the CNI plugins (nodePlugins) and flanneld
// uses their underlay interface.
func flannelInstaller(opts cni.Options) (cni.Installer, error) {
	opts.NodeCNIPlugins = true
	opts.FlannelInterface = flannelInterface
	return cni.New("flannel", opts)
}

// checkFlannelBackend checks that a Flannel backend goes with a Flannel
// choice, and is one the installer knows.
func checkFlannelBackend(cniName, backend string) error {
	switch {
	case backend == "":
		return nil
	case cniName != CNIFlannel && cniName != CNIFlannelKubeRouter:
		return fmt.Errorf("local cluster: a Flannel backend (%s) goes with CNI %s or %s, not %s", backend, CNIFlannel, CNIFlannelKubeRouter, cniName)
	case backend != cni.FlannelVXLAN && backend != cni.FlannelHostGW:
		return fmt.Errorf("local cluster: Flannel backend %q: want %s or %s", backend, cni.FlannelVXLAN, cni.FlannelHostGW)
	}
	return nil
}

// buildFlannel builds flanneld and install-conf, the binaries of Flannel's
// image, and names the stand-in for its CNI plugin image.
func buildFlannel(ctx context.Context, opts Options) (map[string]string, error) {
	build := opts.toolBuild(opts.Flannel)
	flannel, err := controlplane.EnsureFlannel(ctx, build)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		nodeagent.BinaryFlanneld:           flannel.Flanneld,
		nodeagent.BinaryFlannelInstallConf: flannel.InstallConf,
		nodeagent.BinarySubnetBridge:       filepath.Join(opts.BinDir, SubnetBridgeBinary),
	}, nil
}

// buildCNIPlugins builds the bridge, host-local, portmap and loopback
// plugins every node has in /opt/cni/bin, as a distribution's
// containernetworking-plugins package installs them.
func buildCNIPlugins(ctx context.Context, opts Options) (map[string]string, error) {
	build := opts.toolBuild(opts.CNIPlugins)
	return controlplane.EnsureCNIPlugins(ctx, build)
}

// callIptablesOnBridges makes bridged traffic in the node's namespace pass
// through iptables (net.bridge.bridge-nf-call-iptables=1), as a kubelet
// host sets it (kubeadm checks for it): kube-router's policy rules then see
// traffic between pods on the same node's bridge too, not only routed
// traffic.
func callIptablesOnBridges(node topology.Node) error {
	for _, key := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
		if err := netns.Sysctl(node.Netns, key, "1"); err != nil {
			return fmt.Errorf("%s on %s: %w", key, node.Name, err)
		}
	}
	return nil
}
