package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
)

// Upstream's NetworkPolicy e2e: every spec of test/e2e/network/netpol, less
// those that need kernel SCTP sockets (agnhost serves and connects SCTP
// through the kernel, which this machine's kernel lacks).
const (
	upstreamFocus = `\[sig-network\] Netpol`
	upstreamSkip  = `\[Feature:SCTPConnectivity\]`
	// upstreamSpecs starts the name of every spec of upstream's netpol e2e.
	upstreamSpecs = "[sig-network] Netpol"
)

func runUpstreamE2E(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upstream-e2e", stderr)
	kubeconfigPath := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "the cluster's kubeconfig file (default $KUBECONFIG)")
	contextName := fs.String("context", "", "the kubeconfig context (default: its current context)")
	out := fs.String("out", "reports/out/upstream-e2e", "where junit.xml and e2e.log go")
	focus := fs.String("focus", upstreamFocus, "Ginkgo focus: which upstream specs run")
	skip := fs.String("skip", upstreamSkip, "Ginkgo skip: which of them do not (kernel SCTP by default: this kernel has none)")
	timeout := fs.Duration("timeout", 90*time.Minute, "the whole run's time limit")
	procs := fs.Int("procs", 4, "parallel Ginkgo processes (1: e2e.test runs alone, without the Ginkgo CLI)")
	var build controlplane.BuildOptions
	fs.StringVar(&build.SourceDir, "kube-source", "", "the Kubernetes tools module that pins the release (default: the pinned one this executable carries)")
	fs.StringVar(&build.PrebuiltDir, "e2e-bin-dir", os.Getenv(controlplane.EnvE2EPrebuiltDir), "a directory with a prebuilt e2e.test of the pinned release")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: netpolcheck upstream-e2e [flags]\n\n"+
			"Runs the upstream Kubernetes NetworkPolicy e2e (e2e.test built from k8s.io/kubernetes/test/e2e\n"+
			"at the pinned release, once, into the cache) against the cluster of --kubeconfig, and writes\n"+
			"its JUnit report to --out. Exits 1 when a spec fails.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if build.SourceDir == "" && build.PrebuiltDir == "" {
		var err error
		if build.SourceDir, err = toolsModuleDir("kubebin", ""); err != nil {
			return err
		}
	}
	if err := required(map[string]string{"kubeconfig": *kubeconfigPath}); err != nil {
		return err
	}
	if *procs < 1 {
		return usageError{fmt.Errorf("--procs %d: want 1 or more", *procs)}
	}
	if _, err := kubeconfig.Load(*kubeconfigPath, *contextName); err != nil {
		return err
	}
	build.Progress = stderr
	e2eTest, err := controlplane.EnsureE2ETest(ctx, build)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", outDir, err)
	}
	junitPath := filepath.Join(outDir, "junit.xml")
	logPath := filepath.Join(outDir, "e2e.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer logFile.Close()

	// e2e.test's own flags; Ginkgo's go before them, as --ginkgo.X to
	// e2e.test alone or as --X to the Ginkgo CLI.
	e2eArgs := []string{"--kubeconfig", *kubeconfigPath, "--provider", "skeleton", "--report-dir", outDir}
	if *contextName != "" {
		e2eArgs = append(e2eArgs, "--context", *contextName)
	}
	ginkgoArgs := []string{
		"--focus=" + *focus, "--skip=" + *skip, "--junit-report=" + junitPath,
		"--no-color", "--silence-skips", "--timeout=" + timeout.String(),
	}
	name, args := e2eTest, nil
	if *procs == 1 {
		for _, a := range ginkgoArgs {
			args = append(args, "--ginkgo."+strings.TrimPrefix(a, "--"))
		}
		args = append(args, e2eArgs...)
	} else {
		if name, err = controlplane.EnsureGinkgo(ctx, build); err != nil {
			return err
		}
		args = append(append(append([]string{"--procs", fmt.Sprint(*procs)}, ginkgoArgs...), e2eTest, "--"), e2eArgs...)
	}
	fmt.Fprintf(stderr, "running %s in %d process(es), focus %q, skip %q (log: %s)\n", e2eTest, *procs, *focus, *skip, logPath)
	started := time.Now()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = outDir
	cmd.Stdout = io.MultiWriter(logFile, stderr)
	cmd.Stderr = logFile
	runErr := cmd.Run()
	counts, err := countUpstream(junitPath)
	if err != nil {
		if runErr != nil {
			return fmt.Errorf("e2e.test: %w (and no report: %v; see %s)", runErr, err, logPath)
		}
		return err
	}
	fmt.Fprintf(stdout, "upstream e2e: %d passed, %d failed, %d skipped of %d netpol specs in %s; junit: %s\n",
		counts.passed, counts.failed, counts.skipped, counts.focused, time.Since(started).Round(time.Second), junitPath)
	for _, name := range counts.skippedNames {
		fmt.Fprintf(stdout, "  skipped: %s\n", name)
	}
	for _, name := range counts.failedNames {
		fmt.Fprintf(stdout, "  failed: %s\n", name)
	}
	if counts.failed > 0 || runErr != nil {
		return fmt.Errorf("upstream e2e: %d of %d specs failed (e2e.test: %v); see %s", counts.failed, counts.passed+counts.failed, runErr, logPath)
	}
	return nil
}

type upstreamCounts struct {
	focused, passed, failed, skipped int
	skippedNames, failedNames        []string
}

// countUpstream counts the netpol specs of a Ginkgo JUnit report (which
// lists every spec of e2e.test, most of them skipped by the focus): those a
// narrower --focus left out count as skipped.
func countUpstream(path string) (upstreamCounts, error) {
	var c upstreamCounts
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("reading the JUnit report: %w", err)
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Skipped *struct{} `xml:"skipped"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		return c, fmt.Errorf("parsing the JUnit report %s: %w", path, err)
	}
	for _, s := range report.Suites {
		for _, tc := range s.Cases {
			// Ginkgo names a spec "[It] " + its full text.
			if !strings.HasPrefix(strings.TrimPrefix(tc.Name, "[It] "), upstreamSpecs) {
				continue
			}
			c.focused++
			switch {
			case tc.Failure != nil || tc.Error != nil:
				c.failed++
				c.failedNames = append(c.failedNames, tc.Name)
			case tc.Skipped != nil:
				c.skipped++
				c.skippedNames = append(c.skippedNames, tc.Name)
			default:
				c.passed++
			}
		}
	}
	if c.focused == 0 {
		return c, fmt.Errorf("the JUnit report %s has no spec of %s", path, upstreamSpecs)
	}
	return c, nil
}
