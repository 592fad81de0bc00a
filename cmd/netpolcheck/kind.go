package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/cluster/kind"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

func runKind(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "kind", []subcommand{
		{"up", "create a kind cluster, load the image, install a CNI; prints the kubeconfig path", runKindUp},
		{"down", "delete the kind cluster and its state", runKindDown},
		{"logs", "write the nodes' logs into a directory", runKindLogs},
		{"env", "print the suites' environment for the cluster kind up made (shell exports)", runKindEnv},
	}, args, stdout, stderr)
}

// kindFlags registers the flags every kind subcommand shares.
func kindFlags(fs *flag.FlagSet, opts *kind.Options) {
	fs.StringVar(&opts.Name, "name", kind.DefaultName, "kind cluster name")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory: kind config, kubeconfig (default <user cache>/netpolcheck/kind/NAME)")
	fs.StringVar(&opts.KindBinary, "kind", "", "kind binary (default: kind "+kind.KindVersion+" on PATH, else built into the cache)")
	fs.StringVar(&opts.CacheDir, "cache-dir", "", "where kind is built when needed (default <user cache>/netpolcheck)")
}

func runKindUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := kindUpOptions(args, stderr)
	if err != nil {
		return err
	}
	opts.Progress = stderr
	c, err := kind.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kind cluster %s is up with CNI %s; run the suites with:\n  eval \"$(netpolcheck kind env --name %s --state-dir %s)\"; ginkgo -p ./suites/...\n",
		c.Name, c.CNI, c.Name, shellQuote(c.StateDir))
	fmt.Fprintln(stdout, c.Kubeconfig)
	return nil
}

// kindUpOptions parses and checks the flags of kind up.
func kindUpOptions(args []string, stderr io.Writer) (kind.Options, error) {
	fs := newFlagSet("kind up", stderr)
	var opts kind.Options
	kindFlags(fs, &opts)
	nodes := fs.Int("nodes", 1+kind.DefaultWorkers, "nodes in all: one control-plane node and NODES-1 workers (the control-plane node runs pods only when it is the only node)")
	fs.StringVar(&opts.CNI, "cni", kind.DefaultCNI, "CNI to install: "+strings.Join(cni.Names(), ", "))
	fs.StringVar(&opts.Image, "image", deploy.DefaultImage, "netpolcheck image to load into the nodes (make image builds it)")
	fs.StringVar(&opts.NodeImage, "node-image", kind.NodeImage, "kindest/node image")
	fs.DurationVar(&opts.Timeout, "timeout", kind.DefaultTimeout, "how long to wait for the CNI and the nodes to be ready")
	if err := parseFlags(fs, args); err != nil {
		return opts, err
	}
	if *nodes < 1 {
		return opts, usageError{fmt.Errorf("--nodes %d: want 1 or more (nodes in all, the control-plane node included)", *nodes)}
	}
	opts.Workers = *nodes - 1
	if !slices.Contains(cni.Names(), opts.CNI) {
		return opts, usageError{fmt.Errorf("--cni %q: want one of %s", opts.CNI, strings.Join(cni.Names(), ", "))}
	}
	return opts, nil
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

// runKindEnv prints, as shell exports, the suites' configuration for the
// cluster `kind up` recorded in its state directory: its kubeconfig, CNI and
// image, so that a run is named after the CNI the cluster really runs.
// --cni and --image, when given, must agree with the cluster.
func runKindEnv(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("kind env", stderr)
	name := flags.String("name", kind.DefaultName, "kind cluster name")
	stateDir := flags.String("state-dir", "", "state directory of the cluster (default <user cache>/netpolcheck/kind/NAME)")
	wantCNI := flags.String("cni", "", "fail unless the cluster runs this CNI")
	wantImage := flags.String("image", "", "fail unless the cluster was given this netpolcheck image")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	dir := *stateDir
	if dir == "" {
		var err error
		if dir, err = kind.DefaultStateDir(*name); err != nil {
			return err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	c, err := kind.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no kind cluster %s brought up by netpolcheck kind up in %s (%w): run make kind-up (or netpolcheck kind up) first", *name, dir, err)
	}
	if err != nil {
		return err
	}
	if *wantCNI != "" && *wantCNI != c.CNI {
		return fmt.Errorf("kind cluster %s runs CNI %s, not %s: run with KIND_CNI=%s (--cni %s), or bring the cluster up again with %s",
			c.Name, c.CNI, *wantCNI, c.CNI, c.CNI, *wantCNI)
	}
	if *wantImage != "" && *wantImage != c.Image {
		return fmt.Errorf("kind cluster %s was given the image %s, not %s: run with IMAGE=%s (--image %s), or bring the cluster up again with %s",
			c.Name, c.Image, *wantImage, c.Image, c.Image, *wantImage)
	}
	for _, kv := range [][2]string{
		{"NETPOLCHECK_PROVIDER", "kind"}, {"NETPOLCHECK_KUBECONFIG", c.Kubeconfig},
		{"NETPOLCHECK_CNI", c.CNI}, {"NETPOLCHECK_IMAGE", c.Image},
	} {
		fmt.Fprintf(stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
