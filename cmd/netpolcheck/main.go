// Command netpolcheck is the NetworkPolicy conformance and connectivity
// harness: it computes expected truth tables offline (expect, explain), and
// manages the local cluster, runs and comparisons (see `netpolcheck help`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand of the CLI.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"compare":      {"compare runs (results.json or JUnit XML) across CNIs, as Markdown or HTML", runCompare},
		"expect":       {"print the expected truth table of a model and policies (no cluster)", runExpect},
		"explain":      {"explain one cell of the expected truth table (no cluster)", runExplain},
		"probe":        {"probe the running pods of some namespaces now and compare with the policies in force", runProbe},
		"run":          {"run the suites against the local cluster, a kind cluster or any kubeconfig's, with reports", runRun},
		"report":       {"turn a run's JUnit report into results.json and a Markdown summary", runReport},
		"manifest":     {"manifest job|sonobuoy: the YAML that runs the suites inside a cluster (a Job with its least RBAC, a Sonobuoy plugin)", runManifest},
		"job-reports":  {"wait for the Job of manifest job to finish and write the reports from its log", runJobReports},
		"local":        {"local up|down: a Kubernetes cluster of network namespaces on this machine (root, no Docker)", runLocal},
		"kind":         {"kind up|down|logs: a kind cluster (needs Docker) with the CNI of your choice", runKind},
		"ginkgo":       {"", runGinkgo}, // run's driver of the compiled suites, not listed
		"upstream-e2e": {"run the upstream Kubernetes NetworkPolicy e2e (e2e.test, built from source) against a cluster", runUpstreamE2E},
	}
}

// usageError marks errors caused by how the command was called (exit code 2).
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) > 1 && args[0] == "help" {
		// help COMMAND [SUBCOMMAND]: the command's own help
		return run(ctx, append(slices.Clone(args[1:]), "-h"), stdout, stderr)
	}
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout, cmds)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "netpolcheck: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var uerr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "netpolcheck %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "netpolcheck %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: netpolcheck COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for name, cmd := range cmds {
		if cmd.summary != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun `netpolcheck COMMAND -h` or `netpolcheck help COMMAND` for the flags of a command.")
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// subcommand is one subcommand of a command made of them, as kind and
// local; one without a summary is not listed.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// runSubcommand runs the subcommand args[0] of the command name, or prints
// the command's help for -h, --help and help (help SUBCOMMAND: the
// subcommand's).
func runSubcommand(ctx context.Context, name string, subs []subcommand, args []string, stdout, stderr io.Writer) error {
	var listed []string
	for _, sub := range subs {
		if sub.summary != "" {
			listed = append(listed, sub.name)
		}
	}
	want := strings.Join(listed[:len(listed)-1], ", ") + " or " + listed[len(listed)-1]
	if len(args) == 0 {
		return usageError{fmt.Errorf("%s needs a subcommand: %s (netpolcheck %s -h)", name, want, name)}
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" {
			return runSubcommand(ctx, name, subs, []string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprintf(stdout, "usage: netpolcheck %s SUBCOMMAND [flags]\n\nsubcommands:\n", name)
		for _, sub := range subs {
			if sub.summary != "" {
				fmt.Fprintf(stdout, "  %-6s %s\n", sub.name, sub.summary)
			}
		}
		fmt.Fprintf(stdout, "\nRun `netpolcheck %s SUBCOMMAND -h` for the flags of a subcommand.\n", name)
		return nil
	}
	for _, sub := range subs {
		if sub.name == args[0] {
			return sub.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usageError{fmt.Errorf("unknown %s subcommand %q (want %s)", name, args[0], want)}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("netpolcheck "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and rejects positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

// required checks that every named flag was given a non-empty value.
func required(values map[string]string) error {
	var missing []string
	for name, v := range values {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return usageError{fmt.Errorf("missing required flags: %s", strings.Join(missing, ", "))}
}
