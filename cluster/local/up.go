package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodeagent"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodefs"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	nspath "github.com/netpolcheck/netpolcheck/internal/netns"
)

// nodeReadyTimeout bounds the wait for every node agent's first heartbeat,
// and then for every enforcer's first sync.
const nodeReadyTimeout = 60 * time.Second

// debianBusybox is Debian's busybox package's binary, the local cluster's
// busybox image (docs/local.md).
const debianBusybox = "/usr/bin/busybox"

// Up starts a local cluster and returns once every node is Ready. On error,
// or when ctx ends first, everything it made is removed again.
func Up(ctx context.Context, opts Options) (_ *Cluster, err error) {
	opts, err = withDefaults(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state dir: %w", err)
	}
	unlock, err := lock(ctx, opts.StateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if previous, err := Load(opts.StateDir); err == nil {
		if p, alive := previous.alive(); alive {
			return nil, fmt.Errorf("a local cluster %q is already running (%s, pid %d; kubeconfig %s): run `netpolcheck local down` first",
				previous.Name, p.Name, p.PID, previous.Kubeconfig)
		}
	}
	// Nothing of ours runs: whatever is left comes from a crashed run.
	if err := down(ctx, opts.Name, opts.StateDir); err != nil {
		return nil, fmt.Errorf("cleaning up a previous run: %w", err)
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state dir: %w", err)
	}
	choice, err := lookupCNI(opts.CNI, opts.EnforcerArgs)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	c := &Cluster{Name: opts.Name, CNI: opts.CNI, StateDir: opts.StateDir, Prefix: prefixFor(opts.Name), BinDir: opts.BinDir,
		HostNetns: filepath.Join(opts.StateDir, hostNetns)}
	defer func() {
		if err != nil {
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if downErr := down(cleanup, opts.Name, opts.StateDir); downErr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up: %w", downErr))
			}
		}
	}()

	progress := func(format string, args ...any) {
		fmt.Fprintf(opts.Progress, "[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	kube := opts.Kube
	kube.Progress = opts.Progress
	bins, err := controlplane.EnsureBinaries(ctx, kube)
	if err != nil {
		return nil, err
	}
	dnsBuild := opts.CoreDNS
	dnsBuild.Progress = opts.Progress
	coreDNS, err := controlplane.EnsureCoreDNS(ctx, dnsBuild)
	if err != nil {
		return nil, err
	}
	agnhostBuild := opts.Agnhost
	agnhostBuild.Progress = opts.Progress
	if agnhostBuild.SourceDir == "" {
		agnhostBuild.SourceDir = kube.SourceDir
	}
	if agnhostBuild.CacheDir == "" {
		agnhostBuild.CacheDir = kube.CacheDir
	}
	agnhost, err := controlplane.EnsureAgnhost(ctx, agnhostBuild)
	if err != nil {
		return nil, err
	}
	var cniBinaries, nodePlugins map[string]string
	if choice.imageBinaries != nil {
		if cniBinaries, err = choice.imageBinaries(ctx, opts); err != nil {
			return nil, err
		}
	}
	if choice.nodePlugins != nil {
		if nodePlugins, err = choice.nodePlugins(ctx, opts); err != nil {
			return nil, err
		}
	}
	progress("starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler %s", bins.Version)
	egressSocket := filepath.Join(opts.StateDir, egressSock)
	cp, err := controlplane.Start(ctx, controlplane.Config{StateDir: filepath.Join(opts.StateDir, controlDir), Binaries: bins, EgressSocket: egressSocket})
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = cp.Kubeconfig()
	if err := c.save(); err != nil {
		return nil, err
	}
	// The namespace the cluster's host-network components run in, bound
	// at a path of the state directory; Down deletes it.
	if err := nspath.Bind(c.HostNetns); err != nil {
		return nil, fmt.Errorf("binding this process's network namespace at %s: %w", c.HostNetns, err)
	}
	progress("creating %d nodes as network namespaces (%s*)", opts.Nodes, c.Prefix)
	network, err := topology.Create(c.Prefix, opts.Nodes)
	if err != nil {
		return nil, err
	}
	c.Nodes = network.Nodes
	if opts.NodeDomain != "" {
		for i := range c.Nodes {
			c.Nodes[i].Name += "." + opts.NodeDomain
		}
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.startEgressProxy(egressSocket); err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return nil, fmt.Errorf("kube client: %w", err)
	}
	if err := publishAPIEndpoints(ctx, client, c.Nodes); err != nil {
		return nil, err
	}
	nodeOpts := nodeOptions{cni: choice, enforcerArgs: append(slices.Clone(choice.enforcerArgs), opts.EnforcerArgs...), kubeProxy: bins.Proxy,
		proxyKubeconfig: cp.KubeProxyKubeconfig(), coreDNS: coreDNS, agnhost: agnhost, cniBinaries: cniBinaries, nodePlugins: nodePlugins, kubeletCredentials: cp.WriteKubeletCredentials}
	for _, node := range c.Nodes {
		if err := registerNode(ctx, client, node); err != nil {
			return nil, err
		}
		if err := c.startNode(node, nodeOpts); err != nil {
			return nil, fmt.Errorf("starting %s: %w", node.Name, err)
		}
		if err := c.save(); err != nil {
			return nil, err
		}
	}
	progress("waiting for the node agents")
	// A CNI that brings the network makes the nodes Ready once installed.
	agentsUp := nodeReady
	if choice.ownNetwork {
		agentsUp = nodeReported
	}
	if err := waitNodes(ctx, client, c.Nodes, started, agentsUp); err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.StateDir, "nodes"))
	}
	if choice.enforcer {
		progress("waiting for the enforcers' first sync")
		if err := c.waitEnforcersSynced(ctx); err != nil {
			return nil, fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.StateDir, "nodes"))
		}
	}
	if choice.installers != nil {
		progress("installing CNI %s", opts.CNI)
		if err := installCNI(ctx, cp.RESTConfig(), choice, opts); err != nil {
			return nil, fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.StateDir, "nodes"))
		}
	}
	if choice.ownNetwork {
		progress("waiting for the nodes' network")
		if err := waitNodes(ctx, client, c.Nodes, started, nodeReady); err != nil {
			return nil, fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.StateDir, "nodes"))
		}
	}
	progress("starting the cluster DNS (CoreDNS %s at %s)", controlplane.CoreDNSVersion, ClusterDNSIP)
	if err := installDNS(ctx, client); err != nil {
		return nil, err
	}
	if err := waitDNS(ctx, c.Nodes); err != nil {
		return nil, fmt.Errorf("%w (logs of kube-proxy and of the CoreDNS pod in %s)", err, filepath.Join(opts.StateDir, "nodes"))
	}
	progress("cluster %q ready: export KUBECONFIG=%s", c.Name, c.Kubeconfig)
	return c, nil
}

// registerNode creates the Node object, with its pod range and address, as
// Ready: its agent keeps the condition fresh.
func registerNode(ctx context.Context, client kubernetes.Interface, node topology.Node) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	obj := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: map[string]string{
			"kubernetes.io/hostname": node.Name, "kubernetes.io/os": "linux", "netpolcheck.io/local": "true",
		},
			// A kubelet registers its node with this annotation (attach and
			// detach left to the controller, its default); node agents such as
			// flanneld add theirs to a map they expect to be there.
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
		Spec: corev1.NodeSpec{PodCIDR: node.PodCIDR.String(), PodCIDRs: podCIDRs(node)},
	}
	created, err := client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("registering node %s: %w", node.Name, err)
	}
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: node.IP.String()},
			{Type: corev1.NodeHostName, Address: node.Name},
		},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: nodeAgentStarting,
			Message: "the node agent has not reported yet", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletapi.Port}},
		NodeInfo:        corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: controlplane.KubernetesVersion},
	}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("setting the status of node %s: %w", node.Name, err)
	}
	return nil
}

// nodeOptions is what every node runs besides the netpolcheck binaries.
type nodeOptions struct {
	cni cniChoice
	// enforcerArgs are the reference enforcer's, when the CNI runs it.
	enforcerArgs    []string
	kubeProxy       string
	proxyKubeconfig string
	coreDNS         string
	agnhost         string
	// cniBinaries are the binaries of the CNI's images, by name;
	// nodePlugins the CNI plugins every node has, by file name.
	cniBinaries, nodePlugins map[string]string
	// kubeletCredentials issues a node's kubelet serving certificate.
	kubeletCredentials func(dir, nodeName string, ip net.IP) (controlplane.KubeletCredentials, error)
}

// startEgressProxy starts the API server's egress proxy (netpolcheck local
// egress-proxy) in this machine's namespace, listening on socket and
// dialing inside the nodes' namespaces.
func (c *Cluster) startEgressProxy(socket string) error {
	args := []string{"local", "egress-proxy", "--socket", socket}
	for _, n := range c.Nodes {
		args = append(args, "--node", n.Name+"="+n.IP.String()+"@"+netns.Path(n.Netns))
	}
	p, err := detached.Start(detached.Spec{
		Name: "egress-proxy", Path: filepath.Join(c.BinDir, CLIBinary), Args: args,
		LogFile: filepath.Join(c.StateDir, "egress-proxy.log"),
	})
	if err != nil {
		return fmt.Errorf("starting the egress proxy: %w", err)
	}
	c.Processes = append(c.Processes, p)
	return c.save()
}

// Paths inside every node's filesystem view (package nodefs) where its
// agent keeps what a kubelet and a container runtime keep on a machine.
const (
	nodeCNIConfDir = "/etc/cni/net.d"
	nodeCNIBinDir  = "/opt/cni/bin"
	nodeCNICache   = "/var/lib/cni/cache"
	nodeIPAMDir    = "/var/lib/cni/netpolcheck"
	nodePodLogs    = "/var/log/pods"
	nodePodsDir    = "/var/lib/kubelet/pods"
)

// startNode gives the node its filesystem view, writes its CNI and
// kube-proxy configurations and starts, inside the node's view and network
// namespace, its agent (which forwards the API server into the namespace),
// route agent, enforcer and kube-proxy.
func (c *Cluster) startNode(node topology.Node, opts nodeOptions) error {
	dir := c.nodeDir(node.Name)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	// What node processes read from this machine stays visible inside.
	keep := []string{c.StateDir, c.BinDir, filepath.Dir(opts.kubeProxy), filepath.Dir(opts.coreDNS), filepath.Dir(opts.agnhost)}
	for _, path := range opts.cniBinaries {
		keep = append(keep, filepath.Dir(path))
	}
	if err := nodefs.Create(dir, keep); err != nil {
		return fmt.Errorf("the filesystem view of %s: %w", node.Name, err)
	}
	if !opts.cni.ownNetwork {
		if err := writeConflist(c.NodeFile(node.Name, NodeConflist), node, nodeIPAMDir); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(c.BinDir, CNIBinary), c.NodeFile(node.Name, filepath.Join(nodeCNIBinDir, CNIBinary))); err != nil {
			return fmt.Errorf("installing the CNI plugin on %s: %w", node.Name, err)
		}
	}
	for name, path := range opts.nodePlugins {
		if err := copyFile(path, c.NodeFile(node.Name, filepath.Join(nodeCNIBinDir, name))); err != nil {
			return fmt.Errorf("installing the CNI plugin %s on %s: %w", name, node.Name, err)
		}
	}
	proxyConfig, err := writeKubeProxyConfig(dir, node, opts.proxyKubeconfig)
	if err != nil {
		return err
	}
	if opts.cni.prepareNode != nil {
		if err := opts.cni.prepareNode(c, node); err != nil {
			return err
		}
	}
	kube := []string{"--kubeconfig", c.Kubeconfig, "--kube-netns", c.HostNetns}
	agentArgs := []string{"local", "node-agent", "--node", node.Name, "--node-ip", node.IP.String(),
		"--pod-netns-prefix", c.Prefix + "pod-", "--cni-conf-dir", nodeCNIConfDir, "--cni-bin-dir", nodeCNIBinDir,
		"--cni-cache-dir", nodeCNICache, "--probe-binary", filepath.Join(c.BinDir, ProbeBinary),
		"--container-init", filepath.Join(c.BinDir, ContainerInitBinary),
		"--log-dir", nodePodLogs, "--pods-dir", nodePodsDir,
		"--cluster-dns", ClusterDNSIP, "--cluster-domain", ClusterDomain}
	kubelet, err := opts.kubeletCredentials(filepath.Join(dir, "pki"), node.Name, net.IP(node.IP.AsSlice()))
	if err != nil {
		return err
	}
	agentArgs = append(agentArgs, "--kubelet-listen", net.JoinHostPort(node.IP.String(), strconv.Itoa(kubeletapi.Port)),
		"--kubelet-cert", kubelet.CertFile, "--kubelet-key", kubelet.KeyFile, "--kubelet-client-ca", kubelet.ClientCAFile,
		"--kubelet-allowed-user", controlplane.KubeletClientUser)
	for name, path := range map[string]string{
		nodeagent.BinaryCoreDNS: opts.coreDNS, nodeagent.BinaryAgnhost: opts.agnhost,
		nodeagent.BinaryCLI: filepath.Join(c.BinDir, CLIBinary), nodeagent.BinaryCNI: filepath.Join(c.BinDir, CNIBinary),
		nodeagent.BinaryRoutes: filepath.Join(c.BinDir, RoutesBinary), nodeagent.BinaryEnforcer: filepath.Join(c.BinDir, EnforcerBinary),
	} {
		agentArgs = append(agentArgs, "--image-binary", name+"="+path)
	}
	for name, path := range opts.cniBinaries {
		agentArgs = append(agentArgs, "--image-binary", name+"="+path)
	}
	// The project's image has the compiled suites when make build made them.
	if suites := filepath.Join(c.BinDir, "suites"); dirExists(suites) {
		agentArgs = append(agentArgs, "--image-binary", nodeagent.BinarySuites+"="+suites)
	}
	// The busybox image is Debian's busybox, when the machine has it.
	if _, err := os.Stat(debianBusybox); err == nil {
		agentArgs = append(agentArgs, "--image-binary", nodeagent.BinaryBusybox+"="+debianBusybox)
	}
	for _, addr := range apiForwardAddresses(node) {
		agentArgs = append(agentArgs, "--api-forward", addr)
	}
	specs := []detached.Spec{
		{
			Name: node.Name + "/" + nodeAgentProcess, Path: filepath.Join(c.BinDir, CLIBinary),
			Args:    append(agentArgs, kube...),
			LogFile: filepath.Join(dir, "logs", "node-agent.log"),
		},
		{
			Name: node.Name + "/kube-proxy", Path: opts.kubeProxy,
			Args:    []string{"--config", proxyConfig},
			LogFile: filepath.Join(dir, "logs", "kube-proxy.log"),
		},
	}
	if !opts.cni.ownNetwork {
		specs = append(specs, detached.Spec{
			Name: node.Name + "/routes", Path: filepath.Join(c.BinDir, RoutesBinary),
			Args:    append([]string{"--node-name", node.Name}, kube...),
			LogFile: filepath.Join(dir, "logs", "routes.log"),
		})
	}
	if opts.cni.enforcer {
		specs = append(specs, detached.Spec{
			Name: node.Name + "/enforcer", Path: filepath.Join(c.BinDir, EnforcerBinary),
			Args:    append(append([]string{"--node-name", node.Name, "--ready-file", c.EnforcerReadyFile(node.Name)}, kube...), opts.enforcerArgs...),
			LogFile: filepath.Join(dir, "logs", "enforcer.log"),
		})
	}
	for _, spec := range specs {
		var p detached.Process
		err := nodefs.Start(c.NodeNamespace(node.Name), netns.Path(node.Netns), func() (err error) {
			p, err = detached.Start(spec)
			return err
		})
		if err != nil {
			return err
		}
		c.Processes = append(c.Processes, p)
	}
	return nil
}

// copyFile copies an executable.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copying %s to %s: %w", from, to, err)
	}
	return dst.Close()
}

func writeConflist(path string, node topology.Node, ipamDir string) error {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "netpolcheck",
		"plugins": []any{map[string]any{
			"type":    CNIBinary,
			"ranges":  podCIDRs(node),
			"dataDir": ipamDir,
		}},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing the CNI conflist of %s: %w", node.Name, err)
	}
	return nil
}

// waitNodes waits until every node's condition satisfies ok, given since.
func waitNodes(ctx context.Context, client kubernetes.Interface, nodes []topology.Node, since time.Time, ok func(*corev1.Node, time.Time) bool) error {
	ctx, cancel := context.WithTimeout(ctx, nodeReadyTimeout)
	defer cancel()
	for {
		var waiting []string
		for _, n := range nodes {
			obj, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || !ok(obj, since) {
				waiting = append(waiting, n.Name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not ready: %s: %w", strings.Join(waiting, ", "), context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nodeReady says the node reports Ready with a heartbeat newer than since.
func nodeReady(n *corev1.Node, since time.Time) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since.Truncate(time.Second))
		}
	}
	return false
}

// nodeReported says the node's agent reported its condition, Ready or not,
// with a heartbeat newer than since.
func nodeReported(n *corev1.Node, since time.Time) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Reason != nodeAgentStarting && !c.LastHeartbeatTime.Time.Before(since.Truncate(time.Second))
		}
	}
	return false
}

// nodeAgentStarting is the reason of the condition a node is registered
// with, before its agent reports.
const nodeAgentStarting = "NodeAgentStarting"

// EnforcerReadyFile is the file a node's enforcer writes after its first
// sync.
func (c *Cluster) EnforcerReadyFile(node string) string {
	return filepath.Join(c.nodeDir(node), "enforcer.ready")
}

// waitEnforcersSynced waits until every node's enforcer has written its
// ready file: until then a pod's policies may not be enforced yet.
func (c *Cluster) waitEnforcersSynced(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, nodeReadyTimeout)
	defer cancel()
	for {
		var waiting []string
		for _, n := range c.Nodes {
			if _, err := os.Stat(c.EnforcerReadyFile(n.Name)); err != nil {
				waiting = append(waiting, n.Name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("enforcers not synced: %s: %w", strings.Join(waiting, ", "), context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dirExists reports whether path is a directory.
func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
