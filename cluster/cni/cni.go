// Package cni installs a CNI into a cluster created without one (a kind
// cluster with disableDefaultCNI): netpolcheck's reference CNI, Calico,
// Cilium, Flannel, Canal, kube-router, or none.
//
// Each installer renders its objects (the reference CNI from
// reference-cni/deploy, the others from their pinned upstream release,
// fetched at install time and patched where they must match the cluster),
// Install applies them with server-side apply and waits until every
// DaemonSet and Deployment among them is ready. Versions are pinned in
// versions.go; fetching and reading module zips are injectable so tests
// render synthetic upstream-shaped fixtures.
package cni

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

// DefaultPodCIDR is the cluster pod network (docs/network-plan.md).
const DefaultPodCIDR = "10.244.0.0/16"

// Installer renders the objects that install one CNI.
type Installer interface {
	// Name is the installer's registry name (reference, calico, ...).
	Name() string
	// Source says where the objects come from, for progress output.
	Source() string
	// EnforcesPolicy reports whether the CNI enforces NetworkPolicy.
	EnforcesPolicy() bool
	// Manifests renders the objects to apply, in order.
	Manifests(ctx context.Context) ([]*unstructured.Unstructured, error)
}

// Options configure the installers. The zero value is usable.
type Options struct {
	// Image is the netpolcheck image (every netpolcheck binary at /, the CNI
	// bridge plugin at BridgePluginPath): the reference CNI runs it, and the
	// Flannel installer installs the bridge plugin from it. Default
	// deploy.DefaultImage.
	Image string
	// PodCIDR is the cluster pod network the CNI must use. Default
	// DefaultPodCIDR.
	PodCIDR string
	// KubeVersion is the cluster's Kubernetes version (for example
	// "v1.37.0"), the capability Helm charts are rendered for (Cilium).
	// Empty leaves the Helm SDK's default.
	KubeVersion string
	// NoL7Proxy says the cluster cannot run Cilium's Envoy image (the local
	// cluster builds no Envoy): Cilium is installed without its L7 proxy.
	NoL7Proxy bool
	// NodeCNIPlugins says the nodes' /opt/cni/bin already holds the CNI
	// plugins Flannel's pods need, bridge among them (the local cluster
	// installs containernetworking/plugins on every node, as a
	// distribution's package does): the Flannel installer then adds no init
	// container that installs the bridge plugin from Image.
	NodeCNIPlugins bool
	// FlannelInterface is the node interface flanneld uses (--iface); empty
	// leaves flanneld's default, the interface of the default route, which
	// the local cluster's nodes do not have.
	FlannelInterface string
	// FlannelBackend is Flannel's backend, FlannelVXLAN or FlannelHostGW;
	// empty keeps the manifest's (vxlan).
	FlannelBackend string
	// Fetch downloads upstream manifests. Default HTTPFetcher.
	Fetch Fetcher
	// ReadModuleFile reads a file of a pinned Go module version: the
	// installers that take their manifest from a module zip read it so.
	// Default gomodule.ReadFile.
	ReadModuleFile ModuleFileReader
	// ReadModuleFiles reads the files that keep selects from the zip of a
	// pinned Go module version (Cilium's chart). Default
	// gomodule.Source{}.ReadFiles.
	ReadModuleFiles ModuleFilesReader
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() (Options, error) {
	if o.Image == "" {
		o.Image = deploy.DefaultImage
	}
	if o.PodCIDR == "" {
		o.PodCIDR = DefaultPodCIDR
	}
	prefix, err := netip.ParsePrefix(o.PodCIDR)
	if err != nil || prefix != prefix.Masked() {
		return o, fmt.Errorf("pod CIDR %q: want a network prefix such as %s", o.PodCIDR, DefaultPodCIDR)
	}
	if o.Fetch == nil {
		o.Fetch = HTTPFetcher(nil)
	}
	if o.ReadModuleFiles == nil {
		o.ReadModuleFiles = gomodule.Source{}.ReadFiles
	}
	if o.ReadModuleFile == nil {
		o.ReadModuleFile = gomodule.ReadFile
	}
	return o, nil
}

// constructors is the registry of installers by name.
func constructors() map[string]func(Options) Installer {
	return map[string]func(Options) Installer{
		"reference":   func(o Options) Installer { return &reference{opts: o} },
		"calico":      func(o Options) Installer { return &calico{opts: o} },
		"canal":       func(o Options) Installer { return &canal{opts: o} },
		"cilium":      func(o Options) Installer { return &cilium{opts: o} },
		"flannel":     func(o Options) Installer { return &flannel{opts: o} },
		"kube-router": func(o Options) Installer { return &kubeRouter{opts: o} },
		"none":        func(Options) Installer { return none{} },
	}
}

// Names lists the installers, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors()))
	for name := range constructors() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// New returns the installer called name.
func New(name string, opts Options) (Installer, error) {
	construct, ok := constructors()[name]
	if !ok {
		return nil, fmt.Errorf("unknown CNI %q: want one of %s", name, strings.Join(Names(), ", "))
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("CNI %s: %w", name, err)
	}
	return construct(opts), nil
}

// none installs nothing: on a cluster created without a CNI, pods then get
// no network at all (they stay ContainerCreating), so it suits clusters
// that already have one. For a baseline that does not enforce
// NetworkPolicy, use flannel.
type none struct{}

func (none) Name() string         { return "none" }
func (none) Source() string       { return "nothing to install" }
func (none) EnforcesPolicy() bool { return false }
func (none) Manifests(context.Context) ([]*unstructured.Unstructured, error) {
	return nil, nil
}
