// Command netpolcheck-routes is the reference CNI's node route agent: for
// every other Node it routes that node's pod CIDRs via the node's
// InternalIP (host-gw style) and keeps the routes in sync with the Nodes.
// With --write-conflist it also writes this node's CNI conflist from its
// Node's pod CIDRs.
//
// "netpolcheck-routes install-cni --from=SRC --to=DIR" copies the plugin
// binary into the node's CNI binary directory and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/reference-cni/cmdline"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
	"github.com/netpolcheck/netpolcheck/reference-cni/routes"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netpolcheck-routes:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "install-cni" {
		return runInstall(args[1:])
	}
	return runAgent(args)
}

func runAgent(args []string) error {
	flags := flag.NewFlagSet("netpolcheck-routes", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig file; in-cluster configuration when empty")
	kubeNetns := flags.String("kube-netns", "", "network namespace (path) to open API server connections in, e.g. /run/netns/npc-control-plane")
	nodeName := flags.String("node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME)")
	conflistDir := flags.String("write-conflist", "", "write this node's conflist into this directory, e.g. /etc/cni/net.d")
	dataDir := flags.String("data-dir", plugin.DefaultDataDir, "IPAM directory written into the conflist")
	mtu := flags.Int("mtu", 0, "pod veth MTU written into the conflist (0: kernel default)")
	resync := flags.Duration("resync", routes.DefaultResyncPeriod, "how often routes are re-checked without a Node change")
	verbose := flags.Bool("v", false, "log debug messages")
	if help, err := cmdline.Parse(flags, args); help || err != nil {
		return err
	}
	logger := cmdline.Logger(*verbose)

	cfg, err := kubeclient.Config(*kubeconfig, *kubeNetns)
	if err != nil {
		return err
	}
	cfg.UserAgent = "netpolcheck-routes"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating kube client: %w", err)
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer nl.Close()

	agent, err := routes.New(client, nl, routes.Config{
		NodeName: *nodeName, ConflistDir: *conflistDir, DataDir: *dataDir, MTU: *mtu,
		ResyncPeriod: *resync, Logger: logger,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("starting", "node", *nodeName, "conflistDir", *conflistDir, "resync", resync.String())
	if err := agent.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
