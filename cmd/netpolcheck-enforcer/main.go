// Command netpolcheck-enforcer is the reference CNI's NetworkPolicy
// enforcer: it runs on every node, watches Pods, Namespaces and
// NetworkPolicies, and programs the nftables table "inet netpolcheck" of the
// node's network namespace for the node's pods (see package
// reference-cni/enforcer).
//
// "netpolcheck-enforcer --uninstall" deletes the table and exits: stopping
// the enforcer leaves its rules in force on purpose.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/reference-cni/cmdline"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netpolcheck-enforcer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("netpolcheck-enforcer", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig file; in-cluster configuration when empty")
	kubeNetns := flags.String("kube-netns", "", "network namespace (path) to open API server connections in, e.g. /run/netns/npc-control-plane")
	nodeName := flags.String("node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME)")
	netns := flags.String("netns", "", "network namespace (path) whose nftables to program; the current one when empty")
	profile := flags.String("profile", string(enforcer.ProfileCorrect), "behaviour: correct, none (enforce nothing) or delay (program each change --delay late)")
	delay := flags.Duration("delay", 2*time.Second, "how long the delay profile holds back each change")
	resync := flags.Duration("resync", 30*time.Second, "rewrite the whole table this often, restoring it when something else flushed or deleted it; 0 turns it off")
	readyFile := flags.String("ready-file", "", "write this file once the first sync has programmed the cluster's policies (removed at start); off when empty")
	metricsAddr := flags.String("metrics-addr", "", "serve /metrics on this loopback address, e.g. 127.0.0.1:9740; off when empty")
	uninstall := flags.Bool("uninstall", false, "delete the nftables table (every pod of the node open again) and exit")
	verbose := flags.Bool("v", false, "log debug messages, including syncs that changed nothing")
	if help, err := cmdline.Parse(flags, args); help || err != nil {
		return err
	}
	logger := cmdline.Logger(*verbose)

	nftables, err := openNftables(*netns)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *uninstall {
		return nft.Uninstall(ctx, nftables)
	}

	p, err := enforcer.ParseProfile(*profile)
	if err != nil {
		return err
	}
	cfg, err := kubeclient.Config(*kubeconfig, *kubeNetns)
	if err != nil {
		return err
	}
	cfg.UserAgent = "netpolcheck-enforcer"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating kube client: %w", err)
	}
	opts := enforcer.Options{Node: *nodeName, Profile: p, Delay: *delay, Resync: *resync, Logger: logger}
	if *readyFile != "" {
		if opts.OnCommit, err = enforcer.ReadyFile(*readyFile, logger); err != nil {
			return err
		}
	}
	e, err := enforcer.New(client, nftables, opts)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		if err := serveMetrics(ctx, *metricsAddr, e.Metrics(), logger); err != nil {
			return err
		}
	}
	logger.Info("starting", "node", *nodeName, "profile", p, "table", "inet "+nft.TableName)
	return e.Run(ctx)
}

func openNftables(netns string) (knftables.Interface, error) {
	if netns == "" {
		return nft.New()
	}
	return nft.NewInNetns(netns)
}

// serveMetrics serves the metrics on addr, which must be a loopback address,
// until ctx ends.
func serveMetrics(ctx context.Context, addr string, metrics http.Handler, logger *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("--metrics-addr %q: the host must be a loopback IP address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	logger.Info("serving metrics", "addr", l.Addr().String())
	return nil
}
