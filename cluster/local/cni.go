package local

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// The local cluster's CNI choices (Options.CNI).
const (
	// CNIReference is the reference CNI: its plugin, route agent and
	// enforcer on every node.
	CNIReference = "reference"
	// CNINone is the reference CNI with its enforcer's none profile, which
	// enforces nothing (as Flannel).
	CNINone = "none"
	// CNIKubeRouter is kube-router's NetworkPolicy controller alone
	// (firewall-only mode), installed from its own manifest, on top of the
	// reference CNI's plugin and routes; no reference enforcer runs.
	CNIKubeRouter = "kube-router"
	// CNIFlannel is Flannel alone from its own manifest (flanneld, vxlan on
	// the nodes' underlay; pods on a bridge): the pod network, no
	// NetworkPolicy enforcement.
	CNIFlannel = "flannel"
	// CNIFlannelKubeRouter is Flannel's network with kube-router's
	// NetworkPolicy controller, the pairing k3s ships.
	CNIFlannelKubeRouter = "flannel-kube-router"
)

// NodeConflist is the reference CNI's configuration on every node (but
// with a CNI whose manifests bring the pod network). A
// container runtime uses the first configuration of /etc/cni/net.d in
// lexical order, so it is named to sort before the configuration a CNI
// installed on top of the reference CNI's network writes there:
// kube-router's firewall manifest writes 10-kuberouter.conflist (a bridge
// conflist without a subnet, which nothing fills in when kube-router does
// not route), as an admin layering a policy-only controller over a network
// names the network's configuration to stay first.
const NodeConflist = nodeCNIConfDir + "/05-netpolcheck.conflist"

// cniInstallTimeout bounds the wait for a CNI's installed workloads.
const cniInstallTimeout = 3 * time.Minute

// cniChoice is what one CNI choice runs on the local cluster.
type cniChoice struct {
	// enforcer says whether every node runs the reference enforcer, with
	// enforcerArgs before Options.EnforcerArgs.
	enforcer     bool
	enforcerArgs []string
	// ownNetwork says the CNI's manifests bring the pod network: their
	// DaemonSet writes the nodes' CNI configuration and routes between the
	// nodes, so no reference plugin, conflist or route agent runs, and the
	// nodes turn Ready only once it is installed.
	ownNetwork bool
	// prepareNode writes what the CNI needs in a node's filesystem view
	// and namespace before the node starts, as the node's admin would; nil:
	// nothing.
	prepareNode func(c *Cluster, node topology.Node) error
	// nodePlugins builds (once, into the cache) the CNI plugins the node's
	// admin installs in every node's /opt/cni/bin, by file name; nil: none.
	nodePlugins func(ctx context.Context, opts Options) (map[string]string, error)
	// imageBinaries builds (once, into the cache) the binaries of the
	// images the CNI's manifests run, by name in the image table; nil:
	// none.
	imageBinaries func(ctx context.Context, opts Options) (map[string]string, error)
	// installers return the cluster/cni installers whose objects Up applies
	// once the nodes are ready, and waits for, in order (the same Install
	// as on kind).
	installers func(cni.Options) ([]cni.Installer, error)
}

// toolBuild completes the build options of a CNI's tools module: the
// cluster's progress, and the Kubernetes binaries' cache unless it names
// its own.
func (opts Options) toolBuild(build controlplane.BuildOptions) controlplane.BuildOptions {
	build.Progress = opts.Progress
	if build.CacheDir == "" {
		build.CacheDir = opts.Kube.CacheDir
	}
	return build
}

// cniChoices is the registry of the local cluster's CNI choices.
func cniChoices() map[string]cniChoice {
	return map[string]cniChoice{
		CNIReference: {enforcer: true},
		CNINone:      {enforcer: true, enforcerArgs: []string{"--profile", "none"}},
		CNIKubeRouter: {
			prepareNode:   writeKubeRouterKubeconfig,
			imageBinaries: buildKubeRouter,
			installers: func(opts cni.Options) ([]cni.Installer, error) {
				inst, err := cni.KubeRouterFirewall(opts)
				return []cni.Installer{inst}, err
			},
		},
		CNIFlannel: {
			ownNetwork:    true,
			nodePlugins:   buildCNIPlugins,
			imageBinaries: buildFlannel,
			installers: func(opts cni.Options) ([]cni.Installer, error) {
				inst, err := flannelInstaller(opts)
				return []cni.Installer{inst}, err
			},
		},
		CNIFlannelKubeRouter: {
			ownNetwork: true,
			prepareNode: func(c *Cluster, node topology.Node) error {
				if err := callIptablesOnBridges(node); err != nil {
					return err
				}
				return writeKubeRouterKubeconfig(c, node)
			},
			nodePlugins: buildCNIPlugins,
			imageBinaries: func(ctx context.Context, opts Options) (map[string]string, error) {
				flannel, err := buildFlannel(ctx, opts)
				if err != nil {
					return nil, err
				}
				kubeRouter, err := buildKubeRouter(ctx, opts)
				if err != nil {
					return nil, err
				}
				maps.Copy(flannel, kubeRouter)
				return flannel, nil
			},
			installers: func(opts cni.Options) ([]cni.Installer, error) {
				flannel, err := flannelInstaller(opts)
				if err != nil {
					return nil, err
				}
				firewall, err := cni.KubeRouterFirewall(opts)
				return []cni.Installer{flannel, firewall}, err
			},
		},
	}
}

// CNINames lists the local cluster's CNI choices, sorted.
func CNINames() []string {
	var names []string
	for name := range cniChoices() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// lookupCNI returns the choice called name ("" is CNIReference), checking
// that extra enforcer arguments go with a choice that runs the enforcer.
func lookupCNI(name string, enforcerArgs []string) (cniChoice, error) {
	if name == "" {
		name = CNIReference
	}
	choice, ok := cniChoices()[name]
	if !ok {
		return cniChoice{}, fmt.Errorf("local cluster: unknown CNI %q: want one of %s", name, strings.Join(CNINames(), ", "))
	}
	if len(enforcerArgs) > 0 && name != CNIReference {
		return cniChoice{}, fmt.Errorf("local cluster: enforcer arguments %q go with CNI %s only, not %s", enforcerArgs, CNIReference, name)
	}
	return choice, nil
}

// installCNI applies the objects of the choice's installers to the
// cluster and waits until their DaemonSets and Deployments are ready.
func installCNI(ctx context.Context, config *rest.Config, choice cniChoice, opts Options) error {
	if choice.installers == nil {
		return nil
	}
	installers, err := choice.installers(cni.Options{PodCIDR: topology.PodRange, FlannelBackend: opts.FlannelBackend})
	if err != nil {
		return err
	}
	for _, inst := range installers {
		if err := cni.Install(ctx, config, inst, cniInstallTimeout, opts.Progress); err != nil {
			return err
		}
	}
	return nil
}
