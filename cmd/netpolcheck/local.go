package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodeagent"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("local needs a subcommand: up, down (or node-agent, run by up)")}
	}
	switch args[0] {
	case "up":
		return runLocalUp(ctx, args[1:], stdout, stderr)
	case "down":
		return runLocalDown(ctx, args[1:], stdout, stderr)
	case "node-agent":
		return runNodeAgent(ctx, args[1:], stderr)
	}
	return usageError{fmt.Errorf("unknown local subcommand %q (want up or down)", args[0])}
}

func runLocalUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local up", stderr)
	var opts local.Options
	fs.StringVar(&opts.Name, "name", local.DefaultName, "cluster name: namespaces are npc-NAME-*")
	fs.IntVar(&opts.Nodes, "nodes", local.DefaultNodes, "number of nodes")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory (default "+local.DefaultStateRoot+"/NAME)")
	fs.StringVar(&opts.BinDir, "bin-dir", "", "directory of the netpolcheck binaries (default: this executable's)")
	fs.StringVar(&opts.Kube.SourceDir, "kube-source", "", "the Kubernetes tools module (default: cluster/local/kubebin of this checkout)")
	fs.StringVar(&opts.Kube.PrebuiltDir, "kube-bin-dir", os.Getenv(controlplane.EnvPrebuiltDir), "prebuilt kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy")
	profile := fs.String("enforcer-profile", "correct", "reference enforcer profile: correct, none, delay")
	delay := fs.Duration("enforcer-delay", 0, "with --enforcer-profile=delay: delay before programming")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := localDefaults(&opts); err != nil {
		return err
	}
	opts.EnforcerArgs = []string{"--profile", *profile}
	if *delay > 0 {
		opts.EnforcerArgs = append(opts.EnforcerArgs, "--delay", delay.String())
	}
	opts.Progress = stderr
	c, err := local.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, c.Kubeconfig)
	return nil
}

// localDefaults finds the binaries next to this executable and the
// Kubernetes tools module in the checkout they were built from.
func localDefaults(opts *local.Options) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this executable: %w", err)
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Dir(exe)
	}
	if opts.Kube.SourceDir != "" || opts.Kube.PrebuiltDir != "" {
		return nil
	}
	for _, start := range []string{filepath.Dir(exe), mustGetwd()} {
		for dir := start; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "cluster", "local", "kubebin")
			if _, err := os.Stat(filepath.Join(candidate, "go.mod")); err == nil {
				opts.Kube.SourceDir = candidate
				return nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return usageError{errors.New("cannot find cluster/local/kubebin: run from the netpolcheck checkout, or give --kube-source or --kube-bin-dir")}
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
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
	fs.StringVar(&cfg.CNIConflist, "cni-conflist", "", "CNI conflist of the node")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "directory of CNI plugins")
	fs.StringVar(&cfg.CNICacheDir, "cni-cache-dir", "", "libcni cache directory")
	fs.StringVar(&cfg.ProbeBinary, "probe-binary", "", "netpolcheck-probe binary")
	fs.StringVar(&cfg.LogDir, "log-dir", "", "directory for container logs")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig")
	fs.StringVar(&kubeNetns, "kube-netns", "", "network namespace to open API server connections in")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("node", cfg.NodeName)
	restConfig, err := kubeclient.Config(kubeconfig, kubeNetns)
	if err != nil {
		return err
	}
	restConfig.UserAgent = "netpolcheck-node-agent/" + cfg.NodeName
	restConfig.QPS, restConfig.Burst = 100, 200
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
