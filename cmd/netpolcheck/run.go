package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/access"
	"github.com/netpolcheck/netpolcheck/cluster/incluster"
	"github.com/netpolcheck/netpolcheck/cluster/kind"
	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/reports"
	"github.com/netpolcheck/netpolcheck/suites/compiled"
	"github.com/netpolcheck/netpolcheck/suites/framework"
	"github.com/netpolcheck/netpolcheck/suites/progress"
)

// runOptions are the flags of netpolcheck run.
type runOptions struct {
	cfg            framework.Config
	local          bool
	inCluster      bool
	logReports     bool
	doneFile       string
	localUp        local.Options
	kindName       string
	kindState      string
	suites         []string
	labelFilter    string
	focus          string
	procs          int
	generatedCases int
	seed           int
	out            string
	suitesDir      string
	timeout        time.Duration
}

// parseRunFlags parses and checks the flags of netpolcheck run: the cluster
// is the local one (--local), a kind cluster of netpolcheck kind up
// (--kind), or the one of a kubeconfig (--kubeconfig, --context, else
// client-go's loading rules: $KUBECONFIG, ~/.kube/config).
func parseRunFlags(args []string, stderr io.Writer) (runOptions, error) {
	fs := newFlagSet("run", stderr)
	var o runOptions
	fs.StringVar(&o.cfg.Kubeconfig, "kubeconfig", "", "the cluster's kubeconfig (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&o.cfg.Context, "context", "", "the kubeconfig context (default: its current context)")
	fs.BoolVar(&o.local, "local", false, "bring the local cluster up (root), run against it, take it down")
	fs.BoolVar(&o.inCluster, "in-cluster", false, "run against the cluster this runs in, as a pod, with its service account")
	fs.BoolVar(&o.logReports, "log-reports", false, "print the reports to stdout at the end, bundled, for netpolcheck job-reports")
	fs.StringVar(&o.doneFile, "done-file", "", "write the path of junit.xml into this file once the reports are written (Sonobuoy's done file)")
	fs.IntVar(&o.localUp.Nodes, "nodes", 2, "with --local: the local cluster's nodes")
	profile := fs.String("enforcer-profile", "correct", "with --local --cni reference: the reference enforcer's profile, correct or delay")
	delay := fs.Duration("enforcer-delay", 0, "with --enforcer-profile=delay: delay before programming")
	noExternals := fs.Bool("no-external-hosts", false, "with --local: probe without the local cluster's external hosts, as on other clusters (their cells not probed)")
	name := fs.String("name", "", "the run's name in the reports (default: the CNI's)")
	fs.StringVar(&o.kindName, "kind", "", "the kind cluster NAME that netpolcheck kind up made")
	fs.StringVar(&o.kindState, "kind-state-dir", "", "with --kind: its state directory (default <user cache>/netpolcheck/kind/NAME)")
	cni := fs.String("cni", "", "with --local: the local cluster's CNI ("+strings.Join(local.CNINames(), ", ")+", default reference); elsewhere the CNI's name in the reports (default: the cluster's on --kind, else unknown)")
	fs.StringVar(&o.cfg.Image, "image", framework.DefaultImage, "the probe image (kind and other clusters)")
	suites := fs.String("suites", strings.Join(compiled.Suites(), ","), "the suites to run, comma-separated")
	fs.StringVar(&o.labelFilter, "label-filter", "", "Ginkgo label filter, such as 'SCTP && !Generated'")
	fs.StringVar(&o.focus, "focus", "", "run only the cases whose names match this regular expression")
	fs.IntVar(&o.procs, "procs", 4, "parallel processes")
	fs.DurationVar(&o.cfg.ProbeTimeout, "probe-timeout", time.Second, "timeout of each probe")
	fs.DurationVar(&o.cfg.Convergence, "convergence", 15*time.Second, "how long wrong cells are retried before a case fails")
	fs.IntVar(&o.generatedCases, "generated-cases", 300, "how many cases the generated suite makes")
	fs.IntVar(&o.seed, "seed", 1, "the generated suite's seed")
	fs.StringVar(&o.out, "out", "netpolcheck-out", "directory for junit.xml, results.json, summary.md, report.html and ginkgo.log")
	fs.StringVar(&o.suitesDir, "suites-dir", "", "directory of the compiled suites (default: next to this executable, else built into the cache)")
	fs.DurationVar(&o.timeout, "timeout", 45*time.Minute, "the whole run's timeout")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var clusters []string
	for _, name := range []string{"kubeconfig", "local", "kind", "in-cluster"} {
		if given[name] {
			clusters = append(clusters, "--"+name)
		}
	}
	if given["context"] && !given["kubeconfig"] {
		clusters = append(clusters, "--context")
	}
	if len(clusters) > 1 && !(len(clusters) == 2 && given["kubeconfig"] && given["context"]) {
		return o, usageError{fmt.Errorf("%s: give one cluster (--kubeconfig/--context, --local, --kind or --in-cluster)", strings.Join(clusters, " and "))}
	}
	for _, s := range strings.Split(*suites, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(compiled.Suites(), s) {
			return o, usageError{fmt.Errorf("--suites: unknown suite %q (want some of %s)", s, strings.Join(compiled.Suites(), ","))}
		}
		o.suites = append(o.suites, s)
	}
	switch {
	case len(o.suites) == 0:
		return o, usageError{errors.New("--suites: name at least one suite")}
	case o.procs < 1:
		return o, usageError{fmt.Errorf("--procs %d: want 1 or more", o.procs)}
	case o.generatedCases < 1:
		return o, usageError{fmt.Errorf("--generated-cases %d: want 1 or more", o.generatedCases)}
	case o.cfg.ProbeTimeout <= 0 || o.cfg.Convergence < 0:
		return o, usageError{errors.New("--probe-timeout must be positive and --convergence not negative")}
	}
	for _, f := range []string{"nodes", "enforcer-profile", "enforcer-delay", "no-external-hosts"} {
		if given[f] && !o.local {
			return o, usageError{fmt.Errorf("--%s: only with --local", f)}
		}
	}
	o.cfg.CNI = *cni
	switch {
	case o.local:
		o.cfg.Provider = framework.ProviderLocal
		o.cfg.LocalName = local.DefaultName
		o.cfg.NoExternalHosts = *noExternals
		o.localUp.Name, o.localUp.CNI = local.DefaultName, *cni
		if o.localUp.CNI == "" {
			o.localUp.CNI, o.cfg.CNI = local.CNIReference, local.CNIReference
		}
		if o.localUp.Nodes < 1 {
			return o, usageError{fmt.Errorf("--nodes %d: want 1 or more", o.localUp.Nodes)}
		}
		if err := localCNIOptions(&o.localUp, *profile, *delay); err != nil {
			return o, err
		}
	case o.kindName != "":
		o.cfg.Provider = framework.ProviderKind
	case o.inCluster:
		o.cfg.Provider = framework.ProviderInCluster
	default:
		o.cfg.Provider = framework.ProviderExisting
		if o.cfg.Kubeconfig == "" {
			o.cfg.Kubeconfig = defaultKubeconfig()
		}
	}
	if *name != "" {
		o.cfg.CNI = *name
	}
	return o, nil
}

// defaultKubeconfig is the kubeconfig of client-go's loading rules:
// $KUBECONFIG (a list, merged), else ~/.kube/config.
func defaultKubeconfig() string {
	if v := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); v != "" {
		return v
	}
	return clientcmd.RecommendedHomeFile
}

// runRun is netpolcheck run: the compiled suites against a cluster, with a
// progress line, the reports in --out, and exit status 0 only when no case
// failed or diverged.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.doneFile != "" {
		// A done file of an earlier run must not stand for this one.
		if err := os.Remove(o.doneFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--done-file: %w", err)
		}
	}
	err = runSuites(ctx, o, stdout, stderr)
	if _, statErr := os.Stat(o.doneFile); err != nil && o.doneFile != "" && errors.Is(statErr, os.ErrNotExist) {
		err = errors.Join(err, doneWithError(o, err))
	}
	return err
}

// doneWithError is the done file of a run that stopped before its reports
// (a missing permission, no compiled suites): it names error.txt in --out,
// which holds the error, so that Sonobuoy collects that instead of waiting
// for its timeout.
func doneWithError(o runOptions, runErr error) error {
	out, err := filepath.Abs(o.out)
	if err != nil {
		return fmt.Errorf("writing the done file: %w", err)
	}
	path := filepath.Join(out, "error.txt")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("writing the done file: %w", err)
	}
	if err := os.WriteFile(path, []byte(runErr.Error()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing the done file: %w", err)
	}
	if err := os.WriteFile(o.doneFile, []byte(path), 0o644); err != nil {
		return fmt.Errorf("writing the done file: %w", err)
	}
	return nil
}

// runSuites is netpolcheck run once its flags are parsed.
func runSuites(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	suitesDir, err := findSuites(ctx, o.suitesDir, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.out, err)
	}
	if o.out, err = filepath.Abs(o.out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, f := range append(reportFiles(), "ginkgo.log", "progress.jsonl", "logs") {
		if err := os.RemoveAll(filepath.Join(o.out, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clearing %s: %w", o.out, err)
		}
	}
	if o.kindName != "" {
		if err := kindConfig(&o); err != nil {
			return err
		}
	}
	if err := o.cfg.Complete(); err != nil {
		return usageError{err}
	}
	provider, err := framework.NewProvider(o.cfg)
	if err != nil {
		return err
	}
	if o.local {
		opts := o.localUp
		opts.Progress = stderr
		if err := localDefaults(&opts); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bringing the local cluster up (CNI %s)\n", opts.CNI)
		if _, err := local.Up(ctx, opts); err != nil {
			return fmt.Errorf("bringing the local cluster up: %w", err)
		}
		defer func() {
			// The run's context may be cancelled by now: take the cluster
			// down whatever happened.
			if err := provider.Down(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(stderr, "taking the local cluster down: %v\n", err)
			}
		}()
	}
	attachment, err := provider.Attach()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(attachment.REST())
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	if !o.local {
		// The permissions first: a missing one fails now, by name, not as
		// cases timing out.
		if err := access.Check(ctx, client); err != nil {
			return err
		}
	}
	r := suiteRun{opts: o, suitesDir: suitesDir}
	total, err := r.count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "running %d cases of %s on %s (CNI %s, run %s, %d processes); log: %s\n",
		total, strings.Join(o.suites, ", "), o.cfg.Provider, o.cfg.CNI, o.cfg.RunID, o.procs, filepath.Join(o.out, "ginkgo.log"))
	runErr := r.run(ctx, total, newProgressDisplay(stdout, isTerminal(stdout)))
	deleted, cleanErr := framework.DeleteRunObjects(context.WithoutCancel(ctx), client, o.cfg.RunID, 2*time.Minute)
	if len(deleted) > 0 {
		fmt.Fprintf(stdout, "deleted what the run left behind: %s\n", strings.Join(deleted, ", "))
	}
	if n, err := saveClusterLogs(context.WithoutCancel(ctx), client, filepath.Join(o.out, "logs")); err != nil {
		fmt.Fprintf(stderr, "saving the cluster's pods' logs (%d saved): %v\n", n, err)
	}
	run, summary, repErr := writeRunReports(o)
	if summary != nil {
		printFailures(stdout, run, failureLines, failureCases)
		printRunSummary(stdout, summary, o.out)
	}
	repErr = errors.Join(repErr, handOver(o, stdout))
	switch {
	case ctx.Err() != nil:
		return errors.Join(errors.New("interrupted: the reports hold what ran"), cleanErr, repErr)
	case repErr != nil || cleanErr != nil:
		return errors.Join(repErr, cleanErr, runErr)
	}
	return runStatus(summary, runErr)
}

// reportFiles are the reports a run writes to --out.
func reportFiles() []string {
	return []string{"junit.xml", "results.json", "summary.md", "report.html"}
}

// handOver hands the reports on where the run was asked to: bundled on
// stdout (--log-reports, for a Job's log) and named in a done file
// (--done-file, for Sonobuoy).
func handOver(o runOptions, stdout io.Writer) error {
	var errs []error
	if o.logReports {
		errs = append(errs, incluster.WriteBundle(stdout, o.out, reportFiles()))
	}
	if o.doneFile != "" {
		if err := os.WriteFile(o.doneFile, []byte(filepath.Join(o.out, "junit.xml")), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("writing the done file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// runStatus is the run's result: a failure when a case failed or diverged,
// or Ginkgo failed otherwise (a setup node); incomplete cases (nothing of
// them could be probed) and cells not probed are counted, not failures.
func runStatus(s *reports.RunSummary, ginkgoErr error) error {
	if s.Failed > 0 || s.Divergent > 0 {
		return fmt.Errorf("%d cases failed and %d diverged", s.Failed, s.Divergent)
	}
	return ginkgoErr
}

// findSuites returns the directory of the compiled suites: dir when given,
// else next to this executable, else the cache's (built there from the
// module source of a released version).
func findSuites(ctx context.Context, dir string, progress io.Writer) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locating this executable: %w", err)
	}
	// Without a cache directory (no HOME, as in some pods) the suites next
	// to the executable are still found.
	cache, _ := controlplane.CacheRoot("")
	l := compiled.Locator{ExeDir: filepath.Dir(exe), CacheRoot: cache, Progress: progress}
	if info, ok := debug.ReadBuildInfo(); ok {
		l.ModulePath, l.Version = info.Main.Path, info.Main.Version
	}
	if goTool, err := exec.LookPath("go"); err == nil {
		l.GoTool = goTool
	}
	return l.Find(ctx)
}

// kindConfig takes the kubeconfig, CNI and image of the kind cluster that
// netpolcheck kind up recorded.
func kindConfig(o *runOptions) error {
	dir := o.kindState
	if dir == "" {
		var err error
		if dir, err = kind.DefaultStateDir(o.kindName); err != nil {
			return err
		}
	}
	c, err := kind.Load(dir)
	if err != nil {
		return fmt.Errorf("kind cluster %s (state %s): %w: bring it up with netpolcheck kind up --name %s", o.kindName, dir, err, o.kindName)
	}
	o.cfg.Kubeconfig = c.Kubeconfig
	if o.cfg.CNI == "" {
		o.cfg.CNI = c.CNI
	}
	o.cfg.Image = c.Image
	return nil
}

// suiteRun runs the compiled suites with the Ginkgo CLI of this executable.
type suiteRun struct {
	opts      runOptions
	suitesDir string
}

// ginkgoArgs are the arguments of `netpolcheck ginkgo` for the run.
func (r suiteRun) ginkgoArgs(extra ...string) []string {
	args := append([]string{"--no-color", "--succinct"}, extra...)
	if r.opts.labelFilter != "" {
		args = append(args, "--label-filter", r.opts.labelFilter)
	}
	if r.opts.focus != "" {
		args = append(args, "--focus", r.opts.focus)
	}
	for _, s := range r.opts.suites {
		args = append(args, filepath.Join(r.suitesDir, compiled.Binary(s)))
	}
	// Only the suites' Ginkgo entry points, not the packages' other tests.
	return append(args, "--", "-test.run="+compiled.GinkgoTestsOnly)
}

// environ is the suites' environment: this process's without the suites'
// settings (NETPOLCHECK_* but the cache's and prebuilt binaries'), which
// come from the run's flags only.
func (r suiteRun) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, "NETPOLCHECK_") && key != controlplane.EnvCacheDir && !strings.HasSuffix(key, "_BIN_DIR") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, r.opts.cfg.Environ()...),
		"NETPOLCHECK_SEED="+strconv.Itoa(r.opts.seed), "NETPOLCHECK_GENERATED_CASES="+strconv.Itoa(r.opts.generatedCases))
}

// count returns how many cases the run will run: a dry run of the suites
// with the run's filters, read from its JSON report.
func (r suiteRun) count(ctx context.Context) (int, error) {
	dir, err := os.MkdirTemp("", "netpolcheck-dry-run-")
	if err != nil {
		return 0, fmt.Errorf("dry run: %w", err)
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("locating this executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"ginkgo"}, r.ginkgoArgs("--dry-run", "--json-report", "dry-run.json", "--output-dir", dir)...)...)
	cmd.Env = r.environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("dry run of the suites: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dry-run.json"))
	if err != nil {
		return 0, fmt.Errorf("dry run: %w", err)
	}
	return countSpecs(data)
}

// countSpecs counts the cases a Ginkgo dry run's JSON report says will run.
func countSpecs(report []byte) (int, error) {
	var suites []types.Report
	if err := json.Unmarshal(report, &suites); err != nil {
		return 0, fmt.Errorf("reading the dry run's report: %w", err)
	}
	n := 0
	for _, s := range suites {
		for _, spec := range s.SpecReports {
			if spec.LeafNodeType == types.NodeTypeIt && spec.State == types.SpecStatePassed {
				n++
			}
		}
	}
	return n, nil
}

// run runs the suites in parallel, the whole output in ginkgo.log, showing
// progress from the cases' stream; when ctx is cancelled (Ctrl-C, SIGTERM)
// it interrupts Ginkgo once, which cleans up and writes the reports of what
// ran, and waits for it.
func (r suiteRun) run(ctx context.Context, total int, display *progressDisplay) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this executable: %w", err)
	}
	logFile, err := os.Create(filepath.Join(r.opts.out, "ginkgo.log"))
	if err != nil {
		return fmt.Errorf("creating the log: %w", err)
	}
	defer logFile.Close()
	stream := filepath.Join(r.opts.out, "progress.jsonl")
	if err := os.WriteFile(stream, nil, 0o644); err != nil {
		return fmt.Errorf("creating the progress stream: %w", err)
	}
	streamFile, err := os.Open(stream)
	if err != nil {
		return fmt.Errorf("reading the progress stream: %w", err)
	}
	defer streamFile.Close()
	args := r.ginkgoArgs("-p", "--procs", strconv.Itoa(r.opts.procs), "--timeout", r.opts.timeout.String(), "--keep-going",
		"--junit-report", "junit.xml", "--output-dir", r.opts.out)
	cmd := exec.Command(exe, append([]string{"ginkgo"}, args...)...)
	cmd.Env = append(r.environ(), progress.EnvFile+"="+stream)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a terminal's Ctrl-C reaches Ginkgo and the
	// suites once, from here (a second interrupt would skip their cleanup).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting ginkgo: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tracker := &progress.Tracker{Total: total, Started: time.Now()}
	reader := progress.NewReader(streamFile)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	interrupted := ctx.Done()
	for {
		select {
		case <-interrupted:
			interrupted = nil
			display.note("interrupted: cleaning up and writing the reports of what ran")
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				display.note(fmt.Sprintf("interrupting ginkgo: %v", err))
			}
		case <-tick.C:
			if err := display.update(tracker, reader, time.Now()); err != nil {
				display.note(err.Error())
			}
		case err := <-done:
			if uerr := display.update(tracker, reader, time.Now()); uerr != nil {
				display.note(uerr.Error())
			}
			display.finish()
			if err != nil {
				return fmt.Errorf("ginkgo: %w (see %s)", err, logFile.Name())
			}
			return nil
		}
	}
}

// progressDisplay shows the run's progress: on a terminal one line
// rewritten in place; elsewhere a plain line per finished case.
type progressDisplay struct {
	w        io.Writer
	terminal bool
	shown    bool
}

func newProgressDisplay(w io.Writer, terminal bool) *progressDisplay {
	return &progressDisplay{w: w, terminal: terminal}
}

// update counts the cases finished since the last update and shows them.
func (d *progressDisplay) update(t *progress.Tracker, r *progress.Reader, now time.Time) error {
	events, err := r.Next()
	for _, e := range events {
		t.Add(e)
		if !d.terminal {
			fmt.Fprintf(d.w, "%s %s: %s (%s)\n", e.State, e.Suite, e.Case, t.Line(now))
		}
	}
	if d.terminal {
		fmt.Fprintf(d.w, "\r\033[K%s", t.Line(now))
		d.shown = true
	}
	return err
}

// note prints a message on a line of its own.
func (d *progressDisplay) note(msg string) {
	d.finish()
	fmt.Fprintln(d.w, msg)
}

// finish ends the progress line.
func (d *progressDisplay) finish() {
	if d.shown {
		fmt.Fprintln(d.w)
		d.shown = false
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeRunReports turns the run's junit.xml into results.json, summary.md
// and report.html in the run's directory, and returns the run and its
// counts.
func writeRunReports(o runOptions) (*reports.Run, *reports.RunSummary, error) {
	run, err := reports.Load(filepath.Join(o.out, "junit.xml"), o.cfg.CNI)
	if err != nil {
		return nil, nil, fmt.Errorf("the run's reports: %w", err)
	}
	run.CNI, run.Provider, run.Name = o.cfg.CNI, o.cfg.Provider, o.cfg.CNI
	if err := run.Write(filepath.Join(o.out, "results.json")); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(o.out, "summary.md"), []byte(reports.Summary(run)), 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing the summary: %w", err)
	}
	cmp := reports.Compare([]*reports.Run{run})
	page, err := cmp.HTML()
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(o.out, "report.html"), []byte(page), 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing the HTML page: %w", err)
	}
	summary := cmp.Runs[0]
	return run, &summary, nil
}

// failureLines bounds the lines of each failure message printed at the end
// of a run: enough for the first wrong cells and the engine's explanation;
// failureCases bounds the cases printed (a CNI that enforces nothing fails
// hundreds).
const (
	failureLines = 24
	failureCases = 10
)

// printFailures prints why every failed or divergent case failed, without
// its truth tables (results.json and the HTML page have them; see
// reports.WrongCells), each cut to maxLines lines, the first maxCases cases
// only, so that a log (a CI job's) shows which cells were wrong and why the
// engine expected otherwise.
func printFailures(w io.Writer, run *reports.Run, maxLines, maxCases int) {
	printed, failed := 0, 0
	for _, c := range run.Cases {
		if c.State != reports.Failed {
			continue
		}
		failed++
		if printed == maxCases {
			continue
		}
		printed++
		lines := strings.Split(strings.TrimRight(reports.WrongCells(&c), "\n"), "\n")
		if len(lines) > maxLines {
			lines = append(lines[:maxLines], fmt.Sprintf("... (%d more lines in results.json)", len(lines)-maxLines))
		}
		fmt.Fprintf(w, "--- %s (%s):\n    %s\n", c.ID, c.FailureKind(), strings.Join(lines, "\n    "))
	}
	if failed > printed {
		fmt.Fprintf(w, "--- and %d more failed or divergent cases (summary.md names them, results.json has their cells)\n", failed-printed)
	}
}

// printRunSummary prints the run's counts, divergences and cells not
// probed apart from failures, and where the reports are.
func printRunSummary(w io.Writer, s *reports.RunSummary, out string) {
	total := s.Passed + s.Failed + s.Divergent + s.Incomplete + s.Skipped
	fmt.Fprintf(w, "%d cases: %d passed, %d failed, %d divergent, %d incomplete, %d skipped; %d cells not probed\n",
		total, s.Passed, s.Failed, s.Divergent, s.Incomplete, s.Skipped, s.NotProbed)
	var paths []string
	for _, f := range reportFiles() {
		paths = append(paths, filepath.Join(out, f))
	}
	fmt.Fprintf(w, "reports: %s\n", strings.Join(paths, " "))
}
