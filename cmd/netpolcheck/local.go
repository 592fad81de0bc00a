package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/egress"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodeagent"
	"github.com/netpolcheck/netpolcheck/cluster/local/toolpins"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "local", []subcommand{
		{"up", "bring a local cluster up (root); prints the kubeconfig path", runLocalUp},
		{"down", "take the local cluster down and remove everything it made", runLocalDown},
		{"node-agent", "", func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return runNodeAgent(ctx, args, stderr)
		}},
		{"egress-proxy", "", func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return runEgressProxy(ctx, args, stderr)
		}},
	}, args, stdout, stderr)
}

func runLocalUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := localUpOptions(args, stderr)
	if err != nil {
		return err
	}
	if err := localDefaults(&opts); err != nil {
		return err
	}
	opts.Progress = stderr
	c, err := local.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, c.Kubeconfig)
	return nil
}

// localUpOptions parses and checks the flags of local up.
func localUpOptions(args []string, stderr io.Writer) (local.Options, error) {
	fs := newFlagSet("local up", stderr)
	var opts local.Options
	fs.StringVar(&opts.Name, "name", local.DefaultName, "cluster name: namespaces are npc-NAME-*")
	fs.IntVar(&opts.Nodes, "nodes", local.DefaultNodes, "nodes in all, every one runs pods (the control plane runs on this machine's loopback, on no node)")
	fs.StringVar(&opts.NodeDomain, "node-domain", "", "name the nodes nodeN.DOMAIN (such as invalid: names that resolve nowhere)")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory (default "+local.DefaultStateRoot+"/NAME)")
	fs.StringVar(&opts.BinDir, "bin-dir", "", "directory of the netpolcheck binaries (default: this executable's)")
	fs.StringVar(&opts.Kube.SourceDir, "kube-source", "", "the Kubernetes tools module (default: the pinned cluster/local/kubebin this executable carries)")
	fs.StringVar(&opts.Kube.PrebuiltDir, "kube-bin-dir", os.Getenv(controlplane.EnvPrebuiltDir), "prebuilt kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy")
	fs.StringVar(&opts.CoreDNS.SourceDir, "coredns-source", "", "the CoreDNS tools module (default: the pinned cluster/local/corednsbin this executable carries)")
	fs.StringVar(&opts.CoreDNS.PrebuiltDir, "coredns-bin-dir", os.Getenv(controlplane.EnvCoreDNSPrebuiltDir), "a directory with a prebuilt coredns")
	fs.StringVar(&opts.KubeRouter.SourceDir, "kube-router-source", "", "with --cni kube-router: the kube-router tools module (default: the pinned cluster/local/kuberouterbin this executable carries)")
	fs.StringVar(&opts.KubeRouter.PrebuiltDir, "kube-router-bin-dir", os.Getenv(controlplane.EnvKubeRouterPrebuiltDir), "with --cni kube-router: a directory with a prebuilt kube-router")
	fs.StringVar(&opts.Flannel.SourceDir, "flannel-source", "", "with --cni flannel or flannel-kube-router: the Flannel tools module (default: the pinned cluster/local/flannelbin this executable carries)")
	fs.StringVar(&opts.Flannel.PrebuiltDir, "flannel-bin-dir", os.Getenv(controlplane.EnvFlannelPrebuiltDir), "with --cni flannel or flannel-kube-router: a directory with prebuilt flanneld and install-conf")
	fs.StringVar(&opts.CNIPlugins.SourceDir, "cni-plugins-source", "", "with --cni flannel or flannel-kube-router: the CNI plugins tools module (default: the pinned cluster/local/cnipluginsbin this executable carries)")
	fs.StringVar(&opts.CNIPlugins.PrebuiltDir, "cni-plugins-bin-dir", os.Getenv(controlplane.EnvCNIPluginsPrebuiltDir), "with --cni flannel or flannel-kube-router: a directory with prebuilt bridge, host-local, portmap and loopback plugins")
	fs.StringVar(&opts.FlannelBackend, "flannel-backend", "", "with --cni flannel or flannel-kube-router: Flannel's backend, vxlan (the manifest's) or host-gw")
	fs.StringVar(&opts.Agnhost.PrebuiltDir, "agnhost-bin-dir", os.Getenv(controlplane.EnvAgnhostPrebuiltDir), "a directory with a prebuilt agnhost (default: built from --kube-source)")
	fs.StringVar(&opts.CNI, "cni", local.CNIReference, "the cluster's CNI: "+strings.Join(local.CNINames(), ", "))
	profile := fs.String("enforcer-profile", string(enforcer.ProfileCorrect), "with --cni reference: the reference enforcer's profile, correct or delay")
	delay := fs.Duration("enforcer-delay", 0, "with --enforcer-profile=delay: delay before programming")
	if err := parseFlags(fs, args); err != nil {
		return opts, err
	}
	if opts.Nodes < 1 {
		return opts, usageError{fmt.Errorf("--nodes %d: want 1 or more", opts.Nodes)}
	}
	return opts, localCNIOptions(&opts, *profile, *delay)
}

// localCNIOptions checks the local cluster's CNI choice and the reference
// enforcer's profile and delay (with --cni reference only), and sets them.
func localCNIOptions(opts *local.Options, profile string, delay time.Duration) error {
	if !slices.Contains(local.CNINames(), opts.CNI) {
		return usageError{fmt.Errorf("--cni %q: want one of %s", opts.CNI, strings.Join(local.CNINames(), ", "))}
	}
	p, err := enforcer.ParseProfile(profile)
	if err != nil {
		return usageError{fmt.Errorf("--enforcer-profile: %w", err)}
	}
	switch {
	case p == enforcer.ProfileNone:
		return usageError{fmt.Errorf("--enforcer-profile none: the enforcer's none profile is the CNI choice --cni %s", local.CNINone)}
	case p != enforcer.ProfileCorrect && opts.CNI != local.CNIReference:
		return usageError{fmt.Errorf("--enforcer-profile %s: only with --cni %s, not %s", p, local.CNIReference, opts.CNI)}
	case delay < 0 || (delay > 0 && p != enforcer.ProfileDelay):
		return usageError{fmt.Errorf("--enforcer-delay %s: only a positive delay, with --enforcer-profile=delay", delay)}
	}
	if p == enforcer.ProfileDelay {
		opts.EnforcerArgs = []string{"--profile", string(p)}
		if delay > 0 {
			opts.EnforcerArgs = append(opts.EnforcerArgs, "--delay", delay.String())
		}
	}
	return nil
}

// localDefaults finds the binaries next to this executable and writes the
// tools modules this executable carries into the cache, for whichever the
// flags do not give.
func localDefaults(opts *local.Options) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this executable: %w", err)
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Dir(exe)
	}
	toolModules := []toolModule{
		{"kubebin", &opts.Kube},
		{"corednsbin", &opts.CoreDNS},
		{"kubebin", &opts.Agnhost},
	}
	if opts.CNI == local.CNIKubeRouter || opts.CNI == local.CNIFlannelKubeRouter {
		toolModules = append(toolModules, toolModule{"kuberouterbin", &opts.KubeRouter})
	}
	if opts.CNI == local.CNIFlannel || opts.CNI == local.CNIFlannelKubeRouter {
		toolModules = append(toolModules, toolModule{"flannelbin", &opts.Flannel}, toolModule{"cnipluginsbin", &opts.CNIPlugins})
	}
	for _, tools := range toolModules {
		if tools.opts.SourceDir != "" || tools.opts.PrebuiltDir != "" {
			continue
		}
		if tools.opts.SourceDir, err = toolsModuleDir(tools.name, tools.opts.CacheDir); err != nil {
			return err
		}
	}
	return nil
}

// toolModule is a tools module of cluster/local (name) that builds what
// opts say, unless a flag gives it or a prebuilt directory.
type toolModule struct {
	name string
	opts *controlplane.BuildOptions
}

// toolsModuleDir returns a directory holding the tools module name: the
// copy this executable carries (package toolpins), written into the cache
// (cacheDir, or the default one), so that no source checkout is needed.
func toolsModuleDir(name, cacheDir string) (string, error) {
	root, err := controlplane.CacheRoot(cacheDir)
	if err != nil {
		return "", err
	}
	return toolpins.Dir(root, name)
}

func runLocalDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local down", stderr)
	name := fs.String("name", local.DefaultName, "cluster name")
	stateDir := fs.String("state-dir", "", "state directory (default "+local.DefaultStateRoot+"/NAME)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.Down(ctx, *name, *stateDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "local cluster %q removed\n", *name)
	return nil
}

// runNodeAgent is the node agent process `local up` starts inside each node.
func runNodeAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("local node-agent", stderr)
	var cfg nodeagent.Config
	var kubeconfig, kubeNetns string
	fs.StringVar(&cfg.NodeName, "node", "", "node name")
	fs.StringVar(&cfg.NodeIP, "node-ip", "", "node address")
	fs.StringVar(&cfg.PodNetnsPrefix, "pod-netns-prefix", "", "prefix of pod network namespace names")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "", "directory of the node's CNI configurations (the first in lexical order is used)")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "directory of CNI plugins")
	fs.StringVar(&cfg.CNICacheDir, "cni-cache-dir", "", "libcni cache directory")
	fs.StringVar(&cfg.ProbeBinary, "probe-binary", "", "netpolcheck-probe binary")
	containerInit := fs.String("container-init", "", "netpolcheck-container-init binary, the container shim")
	fs.StringVar(&cfg.LogDir, "log-dir", "", "directory for container logs")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig")
	fs.StringVar(&kubeNetns, "kube-netns", "", "network namespace to open API server connections in")
	fs.StringVar(&cfg.PodsDir, "pods-dir", "", "directory for the files of pods (volumes, resolv.conf, container roots)")
	fs.StringVar(&cfg.ClusterDNS, "cluster-dns", "", "the cluster DNS server's address, given to every container")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fs.Func("image-binary", "NAME=PATH: the local build of an image file named NAME, such as agnhost (repeatable; see docs/local.md)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, not %q", v)
		}
		if cfg.Binaries == nil {
			cfg.Binaries = map[string]string{}
		}
		cfg.Binaries[name] = path
		return nil
	})
	var kubelet nodeagent.KubeletAPI
	fs.StringVar(&kubelet.Listen, "kubelet-listen", "", "serve the kubelet API on ADDRESS (NODE_IP:10250); empty: none")
	fs.StringVar(&kubelet.CertFile, "kubelet-cert", "", "the kubelet API's serving certificate")
	fs.StringVar(&kubelet.KeyFile, "kubelet-key", "", "the kubelet API's serving key")
	fs.StringVar(&kubelet.ClientCAFile, "kubelet-client-ca", "", "the CA of the kubelet API's client certificates")
	fs.Func("kubelet-allowed-user", "a client certificate name the kubelet API lets in (repeatable)", func(v string) error {
		kubelet.AllowedUsers = append(kubelet.AllowedUsers, v)
		return nil
	})
	var forward []string
	fs.Func("api-forward", "ADDRESS in the node's namespace to forward to the API server (repeatable)", func(v string) error {
		forward = append(forward, v)
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("node", cfg.NodeName)
	if kubelet.Listen != "" {
		cfg.KubeletAPI = &kubelet
	}
	if *containerInit == "" {
		return usageError{errors.New("local node-agent needs --container-init")}
	}
	cfg.ContainerInit = []string{*containerInit}
	restConfig, err := kubeclient.Config(kubeconfig, kubeNetns)
	if err != nil {
		return err
	}
	if len(forward) > 0 {
		target, err := apiServerAddress(restConfig.Host)
		if err != nil {
			return err
		}
		cfg.APIForward = &nodeagent.APIForward{Listen: forward, Target: target, Dial: restConfig.Dial}
		if cfg.APIForward.Dial == nil {
			cfg.APIForward.Dial = (&net.Dialer{}).DialContext
		}
	}
	restConfig.UserAgent = "netpolcheck-node-agent/" + cfg.NodeName
	// Every pod start reads its pod, configMaps and secrets, requests its
	// token and writes its status.
	restConfig.QPS, restConfig.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	agent, err := nodeagent.New(client, cfg)
	if err != nil {
		return err
	}
	if err := agent.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
		return err
	}
	return nil
}

// runEgressProxy is the API server's egress proxy that `local up` starts:
// HTTP CONNECT on a Unix socket, dialed inside the named node's namespace.
func runEgressProxy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("local egress-proxy", stderr)
	socket := fs.String("socket", "", "the Unix socket to listen on")
	var nodes []egress.Node
	fs.Func("node", "NAME=IP@NETNS_PATH: a node and its network namespace (repeatable)", func(v string) error {
		name, ip, path, err := egress.ParseNode(v)
		if err != nil {
			return err
		}
		nodes = append(nodes, egress.Node{Name: name, IP: ip, Dial: kubeclient.NetnsDialer(path)})
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *socket == "" {
		return usageError{errors.New("local egress-proxy needs --socket")}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	proxy, err := egress.New(nodes, log)
	if err != nil {
		return err
	}
	_ = os.Remove(*socket)
	l, err := net.Listen("unix", *socket)
	if err != nil {
		return fmt.Errorf("egress proxy: %w", err)
	}
	defer os.Remove(*socket)
	log.Info("egress proxy listening", "socket", *socket, "nodes", len(nodes))
	return proxy.Serve(ctx, l)
}

// apiServerAddress returns host:port of an API server URL.
func apiServerAddress(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the API server address %q is not a URL", server)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	return net.JoinHostPort(u.Hostname(), "443"), nil
}
