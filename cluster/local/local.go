// Package local runs a Kubernetes cluster on this machine without Docker: a
// real control plane (package controlplane) on loopback, nodes and external
// hosts as network namespaces (package topology), and per node the local
// kubelet (package nodeagent), the reference CNI's route agent, its
// NetworkPolicy enforcer and the real kube-proxy (nftables mode), each a
// process inside the node's namespace that talks to the API server like a
// DaemonSet pod would. CoreDNS, run by a node agent from a Deployment in
// kube-system, is the cluster DNS (ClusterDNSIP), so Services work as in a
// real cluster: ClusterIPs, NodePorts on every node's address, and names.
//
// Up leaves the cluster running and records it in a state directory; Load
// opens it from any process; Down removes everything it made. Up cleans up
// after a crashed run first, and refuses to start over a running one.
package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodefs"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// Defaults.
const (
	DefaultName  = "local"
	DefaultNodes = 2
	// DefaultStateRoot holds one state directory per cluster name.
	DefaultStateRoot = "/run/netpolcheck"
)

// Binary names the local cluster runs from Options.BinDir.
const (
	ProbeBinary    = "netpolcheck-probe"
	CNIBinary      = "netpolcheck-cni"
	RoutesBinary   = "netpolcheck-routes"
	EnforcerBinary = "netpolcheck-enforcer"
	CLIBinary      = "netpolcheck"
	// ContainerInitBinary is the container shim node agents start.
	ContainerInitBinary = "netpolcheck-container-init"
)

// Options configure Up.
type Options struct {
	// Name names the cluster: its namespaces are npc-<Name>-*.
	Name  string
	Nodes int
	// StateDir defaults to DefaultStateRoot/<Name>.
	StateDir string
	// BinDir holds the netpolcheck binaries (make build puts them in bin/).
	BinDir string
	// Kube says where the Kubernetes binaries come from.
	Kube controlplane.BuildOptions
	// CoreDNS says where the CoreDNS binary comes from (SourceDir is
	// cluster/local/corednsbin).
	CoreDNS controlplane.BuildOptions
	// Agnhost says where agnhost comes from (SourceDir and CacheDir default
	// to Kube's).
	Agnhost controlplane.BuildOptions
	// KubeRouter says where kube-router comes from with CNIKubeRouter
	// (SourceDir is cluster/local/kuberouterbin; CacheDir defaults to
	// Kube's).
	KubeRouter controlplane.BuildOptions
	// Flannel says where flanneld and install-conf come from with
	// CNIFlannel and CNIFlannelKubeRouter (SourceDir is
	// cluster/local/flannelbin), CNIPlugins where the CNI plugins every node
	// has then come from (SourceDir is cluster/local/cnipluginsbin); their
	// CacheDir defaults to Kube's.
	Flannel    controlplane.BuildOptions
	CNIPlugins controlplane.BuildOptions
	// FlannelBackend is Flannel's backend with the Flannel choices:
	// cni.FlannelVXLAN (the manifest's, when empty) or cni.FlannelHostGW.
	FlannelBackend string
	// NodeDomain, when set, makes the node names nodeN.NodeDomain (such as
	// node1.invalid): names that nothing but the cluster knows.
	NodeDomain string
	// CNI names the cluster's CNI choice (CNINames): CNIReference (the
	// default when empty), CNINone, CNIKubeRouter, CNIFlannel,
	// CNIFlannelKubeRouter.
	CNI string
	// EnforcerArgs are extra arguments for every node's reference enforcer,
	// such as --profile=delay; only with CNIReference.
	EnforcerArgs []string
	// Progress receives one line per stage.
	Progress io.Writer
}

// Cluster is a running local cluster, as recorded in its state directory.
type Cluster struct {
	Name string `json:"name"`
	// CNI is the cluster's CNI choice (Options.CNI).
	CNI        string `json:"cni"`
	StateDir   string `json:"stateDir"`
	Kubeconfig string `json:"kubeconfig"`
	// Prefix starts every namespace name of the cluster.
	Prefix string `json:"prefix"`
	// HostNetns is a bind mount of the control plane's network namespace;
	// node processes open their API server connections there.
	HostNetns string             `json:"hostNetns"`
	BinDir    string             `json:"binDir"`
	Nodes     []topology.Node    `json:"nodes"`
	Processes []detached.Process `json:"processes"`
	// Externals are the external hosts added so far.
	Externals []ExternalHost `json:"externals,omitempty"`
}

// ExternalHost is an external host namespace and its probe server.
type ExternalHost struct {
	topology.External
	Ports   []string          `json:"ports,omitempty"`
	Process *detached.Process `json:"process,omitempty"`
}

const (
	stateFile   = "cluster.json"
	lockFile    = "cluster.lock"
	hostNetns   = "host.netns"
	egressSock  = "egress.sock"
	controlDir  = "control-plane"
	processStop = 5 * time.Second
	// nodeAgentProcess names a node's agent among its processes.
	nodeAgentProcess = "node-agent"
)

// PodNetns returns the name of a pod's network namespace: every node agent
// names it from the pod UID.
func (c *Cluster) PodNetns(uid string) string {
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return c.Prefix + "pod-" + uid
}

// nodeDir is the directory of a node's state.
func (c *Cluster) nodeDir(node string) string { return filepath.Join(c.StateDir, "nodes", node) }

// NodeNamespace returns the file that pins a node's filesystem view (its
// mount namespace): `nsenter --mount=FILE` enters it.
func (c *Cluster) NodeNamespace(node string) string {
	return filepath.Join(c.nodeDir(node), nodefs.NamespaceFile)
}

// NodeFile returns where this machine finds path of one of a node's own
// directories (nodefs.OwnDirs): NodeFile("node1", "/var/log/pods") is the
// node's pod logs. Mounts made inside the node's view (network namespaces
// under /run/netns) are not there: see InNode.
func (c *Cluster) NodeFile(node, path string) string {
	return filepath.Join(c.nodeDir(node), nodefs.RootDir, path)
}

// InNode returns a path of this machine through which path resolves
// inside the node's filesystem view, mounts made inside included
// (/proc/PID/root/PATH of the node's agent), or an error when the agent
// does not run.
func (c *Cluster) InNode(node, path string) (string, error) {
	for _, p := range c.Processes {
		if p.Name == node+"/"+nodeAgentProcess && p.Alive() {
			return filepath.Join("/proc", strconv.Itoa(p.PID), "root", path), nil
		}
	}
	return "", fmt.Errorf("node %q: its agent does not run", node)
}

// PodNetnsPath returns where this machine opens the network namespace of
// the pod with uid on node: pods' namespaces are named under the node's own
// /run/netns.
func (c *Cluster) PodNetnsPath(node, uid string) (string, error) {
	return c.InNode(node, netns.Path(c.PodNetns(uid)))
}

// RESTConfig returns a client configuration for the cluster.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the local cluster's kubeconfig: %w", err)
	}
	return cfg, nil
}

// Client returns a clientset for the cluster.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func withDefaults(opts Options) (Options, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Nodes == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(DefaultStateRoot, opts.Name)
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.CNI == "" {
		opts.CNI = CNIReference
	}
	if _, err := lookupCNI(opts.CNI, opts.EnforcerArgs); err != nil {
		return opts, err
	}
	if err := checkFlannelBackend(opts.CNI, opts.FlannelBackend); err != nil {
		return opts, err
	}
	if opts.BinDir == "" {
		return opts, errors.New("local cluster: the directory of the netpolcheck binaries is required (run `make build`; bin/)")
	}
	bin, err := filepath.Abs(opts.BinDir)
	if err != nil {
		return opts, err
	}
	opts.BinDir = bin
	for _, name := range []string{ProbeBinary, CNIBinary, RoutesBinary, EnforcerBinary, CLIBinary, ContainerInitBinary, SubnetBridgeBinary} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return opts, fmt.Errorf("local cluster: %s is missing from %s (run `make build`)", name, bin)
		}
	}
	if os.Geteuid() != 0 {
		return opts, errors.New("local cluster: must run as root (it creates network namespaces)")
	}
	return opts, nil
}

// Load opens the cluster recorded in a state directory.
func Load(stateDir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no local cluster in %s: run `netpolcheck local up` first", stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the local cluster's state: %w", err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("reading the local cluster's state %s: %w", stateDir, err)
	}
	return &c, nil
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.StateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing the local cluster's state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(c.StateDir, stateFile))
}

// alive returns the first recorded process still running.
func (c *Cluster) alive() (detached.Process, bool) {
	for _, p := range c.Processes {
		if p.Alive() {
			return p, true
		}
	}
	return detached.Process{}, false
}

func prefixFor(name string) string { return "npc-" + name + "-" }

// podCIDRs returns the node's pod ranges as strings.
func podCIDRs(n topology.Node) []string { return []string{n.PodCIDR.String()} }
