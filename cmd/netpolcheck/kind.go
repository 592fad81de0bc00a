package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/cluster/kind"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

func runKind(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("kind needs a subcommand: up, down or logs")}
	}
	switch args[0] {
	case "up":
		return runKindUp(ctx, args[1:], stdout, stderr)
	case "down":
		return runKindDown(ctx, args[1:], stdout, stderr)
	case "logs":
		return runKindLogs(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown kind subcommand %q (want up, down or logs)", args[0])}
}

// kindFlags registers the flags every kind subcommand shares.
func kindFlags(fs *flag.FlagSet, opts *kind.Options) {
	fs.StringVar(&opts.Name, "name", kind.DefaultName, "kind cluster name")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory: kind config, kubeconfig (default <user cache>/netpolcheck/kind/NAME)")
	fs.StringVar(&opts.KindBinary, "kind", "", "kind binary (default: kind "+kind.KindVersion+" on PATH, else built into the cache)")
	fs.StringVar(&opts.CacheDir, "cache-dir", "", "where kind is built when needed (default <user cache>/netpolcheck)")
}

func runKindUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kind up", stderr)
	var opts kind.Options
	kindFlags(fs, &opts)
	fs.IntVar(&opts.Workers, "nodes", kind.DefaultWorkers, "worker nodes, besides the control-plane node")
	fs.StringVar(&opts.CNI, "cni", kind.DefaultCNI, "CNI to install: "+strings.Join(cni.Names(), ", "))
	fs.StringVar(&opts.Image, "image", deploy.DefaultImage, "netpolcheck image to load into the nodes (make image builds it)")
	fs.StringVar(&opts.NodeImage, "node-image", kind.NodeImage, "kindest/node image")
	fs.DurationVar(&opts.Timeout, "timeout", kind.DefaultTimeout, "how long to wait for the CNI and the nodes to be ready")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !slices.Contains(cni.Names(), opts.CNI) {
		return usageError{fmt.Errorf("--cni %q: want one of %s", opts.CNI, strings.Join(cni.Names(), ", "))}
	}
	opts.Progress = stderr
	c, err := kind.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kind cluster %s is up with CNI %s; run the suites with:\n  NETPOLCHECK_PROVIDER=kind NETPOLCHECK_KUBECONFIG=%s NETPOLCHECK_CNI=%s NETPOLCHECK_IMAGE=%s ginkgo -p ./suites/...\n",
		c.Name, c.CNI, c.Kubeconfig, c.CNI, c.Image)
	fmt.Fprintln(stdout, c.Kubeconfig)
	return nil
}

func runKindDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kind down", stderr)
	var opts kind.Options
	kindFlags(fs, &opts)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts.Progress = stderr
	if err := kind.Down(ctx, opts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kind cluster %q removed\n", opts.Name)
	return nil
}

func runKindLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kind logs", stderr)
	var opts kind.Options
	kindFlags(fs, &opts)
	dir := fs.String("dir", "", "directory to write the nodes' logs into (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"dir": *dir}); err != nil {
		return err
	}
	opts.Progress = stderr
	if err := kind.ExportLogs(ctx, opts, *dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logs of kind cluster %q in %s\n", opts.Name, *dir)
	return nil
}
