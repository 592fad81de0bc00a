package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/incluster"
	"github.com/netpolcheck/netpolcheck/reports"
	"github.com/netpolcheck/netpolcheck/suites/framework"
	"github.com/netpolcheck/netpolcheck/suites/progress"
)

func TestRunFlags(t *testing.T) {
	t.Setenv("KUBECONFIG", "/from/env")
	// The run's flags alone configure the suites.
	t.Setenv("NETPOLCHECK_EXTERNAL_HOSTS", "none")
	t.Setenv("NETPOLCHECK_SEED", "99")
	t.Setenv("NETPOLCHECK_CACHE", "/cache")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o runOptions)
	}{
		{name: "defaults: the kubeconfig of $KUBECONFIG, every suite", check: func(t *testing.T, o runOptions) {
			if o.cfg.Provider != framework.ProviderExisting || o.cfg.Kubeconfig != "/from/env" || strings.Join(o.suites, ",") != "recipes,conformance,generated" ||
				o.procs != 4 || o.cfg.ProbeTimeout != time.Second || o.cfg.Convergence != 15*time.Second || o.generatedCases != 300 || o.seed != 1 {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "kubeconfig and context", args: []string{"--kubeconfig", "/k", "--context", "c"}, check: func(t *testing.T, o runOptions) {
			if o.cfg.Provider != framework.ProviderExisting || o.cfg.Kubeconfig != "/k" || o.cfg.Context != "c" {
				t.Errorf("got %+v", o.cfg)
			}
		}},
		{name: "context alone: the loading rules' kubeconfig", args: []string{"--context", "c"}, check: func(t *testing.T, o runOptions) {
			if o.cfg.Kubeconfig != "/from/env" || o.cfg.Context != "c" {
				t.Errorf("got %+v", o.cfg)
			}
		}},
		{name: "local", args: []string{"--local", "--nodes", "3"}, check: func(t *testing.T, o runOptions) {
			if o.cfg.Provider != framework.ProviderLocal || !o.local || o.localUp.Nodes != 3 || o.cfg.Kubeconfig != "" ||
				o.localUp.CNI != "reference" || o.cfg.CNI != "reference" || o.cfg.NoExternalHosts {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "local with a CNI, a profile and a name", args: []string{"--local", "--cni", "reference", "--enforcer-profile", "delay",
			"--enforcer-delay", "2s", "--name", "reference-delay", "--no-external-hosts"}, check: func(t *testing.T, o runOptions) {
			if o.localUp.CNI != "reference" || strings.Join(o.localUp.EnforcerArgs, " ") != "--profile delay --delay 2s" ||
				o.cfg.CNI != "reference-delay" || !o.cfg.NoExternalHosts {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "local with the none CNI", args: []string{"--local", "--cni", "none"}, check: func(t *testing.T, o runOptions) {
			if o.localUp.CNI != "none" || o.cfg.CNI != "none" {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "local with Flannel", args: []string{"--local", "--cni", "flannel-kube-router"}, check: func(t *testing.T, o runOptions) {
			if o.localUp.CNI != "flannel-kube-router" || o.cfg.CNI != "flannel-kube-router" {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "local with an unknown CNI", args: []string{"--local", "--cni", "calico"}, wantErr: `--cni "calico": want one of`},
		{name: "enforcer profile off the local cluster", args: []string{"--enforcer-profile", "delay"}, wantErr: "--enforcer-profile: only with --local"},
		{name: "kind", args: []string{"--kind", "netpolcheck"}, check: func(t *testing.T, o runOptions) {
			if o.cfg.Provider != framework.ProviderKind || o.kindName != "netpolcheck" {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "what the environment variables set", args: []string{"--cni", "calico", "--image", "i:1", "--suites", "conformance, recipes",
			"--label-filter", "SCTP", "--focus", "C1", "--procs", "2", "--probe-timeout", "2s", "--convergence", "3s",
			"--generated-cases", "10", "--seed", "7", "--out", "/o"}, check: func(t *testing.T, o runOptions) {
			want := []string{"NETPOLCHECK_CNI=calico", "NETPOLCHECK_IMAGE=i:1", "NETPOLCHECK_PROBE_TIMEOUT=2s", "NETPOLCHECK_CONVERGENCE=3s"}
			env := strings.Join(o.cfg.Environ(), " ")
			for _, w := range want {
				if !strings.Contains(env, w) {
					t.Errorf("environment %s lacks %s", env, w)
				}
			}
			r := suiteRun{opts: o, suitesDir: "/s"}
			args := strings.Join(r.ginkgoArgs(), " ")
			if args != "--no-color --succinct --label-filter SCTP --focus C1 /s/conformance/conformance.test /s/recipes/recipes.test -- -test.run=^Test(Recipes|Conformance|Generated)$" {
				t.Errorf("ginkgo args %s", args)
			}
			suiteEnv := strings.Join(r.environ(), " ")
			if strings.Contains(suiteEnv, "NETPOLCHECK_EXTERNAL_HOSTS") || strings.Contains(suiteEnv, "NETPOLCHECK_SEED=99") ||
				!strings.Contains(suiteEnv, "NETPOLCHECK_CACHE=/cache") {
				t.Errorf("the suites' environment keeps settings of this process's: %s", suiteEnv)
			}
			if !strings.Contains(suiteEnv, "NETPOLCHECK_SEED=7") || !strings.Contains(suiteEnv, "NETPOLCHECK_GENERATED_CASES=10") || o.out != "/o" || o.procs != 2 {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "in the cluster", args: []string{"--in-cluster", "--log-reports", "--done-file", "/r/done"}, check: func(t *testing.T, o runOptions) {
			if o.cfg.Provider != framework.ProviderInCluster || o.cfg.Kubeconfig != "" || !o.logReports || o.doneFile != "/r/done" {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "in the cluster and a kubeconfig", args: []string{"--in-cluster", "--kubeconfig", "/k"}, wantErr: "--kubeconfig and --in-cluster: give one cluster"},
		{name: "two clusters", args: []string{"--local", "--kind", "k"}, wantErr: "--local and --kind: give one cluster"},
		{name: "kubeconfig and local", args: []string{"--kubeconfig", "/k", "--local"}, wantErr: "give one cluster"},
		{name: "unknown suite", args: []string{"--suites", "recipes,e2e"}, wantErr: `unknown suite "e2e"`},
		{name: "no suite", args: []string{"--suites", ","}, wantErr: "at least one suite"},
		{name: "no processes", args: []string{"--procs", "0"}, wantErr: "--procs 0"},
		{name: "positional", args: []string{"x"}, wantErr: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseRunFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				var uerr usageError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &uerr) {
					t.Fatalf("error %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
	if _, err := parseRunFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// recordedStream is a progress stream as two processes append it, the last
// line not yet complete.
const recordedStream = `{"suite":"recipes","case":"R1: deny all","state":"passed","seconds":2}
{"suite":"recipes","case":"R2: allow app","state":"failed","seconds":3}
{"suite":"recipes","case":"R3: skipped","state":"skipped","seconds":0}
{"suite":"recipes","case":"R4: allow ns","state":"passed","seconds":2}
{"suite":"recipes","case":"R5: par`

func TestProgressDisplay(t *testing.T) {
	started := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	now := started.Add(40 * time.Second)
	for _, tc := range []struct {
		name     string
		terminal bool
		want     string
	}{
		{name: "terminal", terminal: true, want: "\r\033[K4/10 cases, 2 passed, 1 failed, 1 skipped, ETA 1m0s"},
		{name: "log", want: "passed recipes: R1: deny all (1/10 cases, 1 passed, 0 failed, ETA 6m0s)\n" +
			"failed recipes: R2: allow app (2/10 cases, 1 passed, 1 failed, ETA 2m40s)\n" +
			"skipped recipes: R3: skipped (3/10 cases, 1 passed, 1 failed, 1 skipped, ETA 1m33s)\n" +
			"passed recipes: R4: allow ns (4/10 cases, 2 passed, 1 failed, 1 skipped, ETA 1m0s)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := newProgressDisplay(&out, tc.terminal)
			tracker := &progress.Tracker{Total: 10, Started: started}
			stream := strings.NewReader(recordedStream)
			if err := d.update(tracker, progress.NewReader(stream), now); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("shown %q\nwant  %q", out.String(), tc.want)
			}
		})
	}
}

func TestProgressLineBeforeAndAfter(t *testing.T) {
	started := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	tr := &progress.Tracker{Total: 2, Started: started}
	if got := tr.Line(started.Add(time.Second)); got != "0/2 cases, 0 passed, 0 failed, ETA -" {
		t.Errorf("before the first case: %q", got)
	}
	tr.Add(progress.Event{State: "passed"})
	tr.Add(progress.Event{State: "timedout"})
	if got := tr.Line(started.Add(time.Minute)); got != "2/2 cases, 1 passed, 1 failed, ETA 0s" {
		t.Errorf("at the end: %q", got)
	}
}

func TestRunReportsAndExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		junit      string
		wantFailed int
		wantDiv    int
		wantLine   string
		// wantFailures is what printFailures prints with 2 lines a case.
		wantFailures string
	}{
		{name: "every case passed", junit: junitOf(`<testcase name="[It] recipes R1: deny all [Recipe]" classname="netpolcheck recipes" status="passed" time="1"></testcase>`),
			wantLine: "1 cases: 1 passed, 0 failed, 0 divergent, 0 incomplete, 0 skipped; 0 cells not probed"},
		{name: "a failed case", junit: junitOf(`<testcase name="[It] recipes R1: deny all [Recipe]" classname="netpolcheck recipes" status="failed" time="1"><failure message="mismatch" type="failed">x</failure></testcase>` +
			`<testcase name="[It] recipes R2: deny [Recipe]" classname="netpolcheck recipes" status="passed" time="1"></testcase>`),
			wantFailed: 1, wantFailures: "--- recipes R1: deny all (failed):\n    mismatch\n", wantLine: "2 cases: 1 passed, 1 failed, 0 divergent, 0 incomplete, 0 skipped; 0 cells not probed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			if err := os.WriteFile(filepath.Join(out, "junit.xml"), []byte(tc.junit), 0o644); err != nil {
				t.Fatal(err)
			}
			o := runOptions{out: out, cfg: framework.Config{CNI: "reference", Provider: "local"}}
			run, summary, err := writeRunReports(o)
			if err != nil {
				t.Fatal(err)
			}
			if summary.Failed != tc.wantFailed || summary.Divergent != tc.wantDiv {
				t.Errorf("summary %+v", summary)
			}
			if got := runStatus(summary, nil); (got == nil) != (tc.wantFailed+tc.wantDiv == 0) {
				t.Errorf("status %v for %+v", got, summary)
			}
			var failures bytes.Buffer
			printFailures(&failures, run, 2, 10)
			if got := failures.String(); got != tc.wantFailures {
				t.Errorf("failures printed %q, want %q", got, tc.wantFailures)
			}
			var printed bytes.Buffer
			printRunSummary(&printed, summary, out)
			if !strings.HasPrefix(printed.String(), tc.wantLine+"\n") {
				t.Errorf("printed %q, want it to start with %q", printed.String(), tc.wantLine)
			}
			for _, f := range []string{"results.json", "summary.md", "report.html"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("report %s: %v", f, err)
				}
			}
			written, err := reports.Load(filepath.Join(out, "results.json"), "")
			if err != nil || written.CNI != "reference" || written.Provider != "local" {
				t.Errorf("results.json: %v, %+v", err, written)
			}
		})
	}
	if err := runStatus(&reports.RunSummary{Passed: 3, Divergent: 1}, nil); err == nil || !strings.Contains(err.Error(), "1 diverged") {
		t.Errorf("a divergent case: status %v, want a failure", err)
	}
	if err := runStatus(&reports.RunSummary{Passed: 3, Incomplete: 1, NotProbed: 9}, nil); err != nil {
		t.Errorf("an incomplete case (nothing probed): status %v, want success", err)
	}
	if err := runStatus(&reports.RunSummary{Passed: 3}, errors.New("ginkgo: exit status 1")); err == nil {
		t.Error("ginkgo failed (a setup node): status nil, want its error")
	}
}

func junitOf(cases string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="netpolcheck recipes">` + cases + `</testsuite></testsuites>`
}

// The reports are handed over as asked: bundled on stdout for a Job's log,
// and junit.xml named in Sonobuoy's done file.
func TestHandOver(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "junit.xml"), []byte("<testsuites/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(t.TempDir(), "done")
	var stdout bytes.Buffer
	if err := handOver(runOptions{out: out, logReports: true, doneFile: done}, &stdout); err != nil {
		t.Fatal(err)
	}
	back := t.TempDir()
	files, err := incluster.ReadBundle(&stdout, back)
	if err != nil || len(files) != 1 || files[0] != "junit.xml" {
		t.Errorf("the bundle on stdout holds %v, %v; want junit.xml", files, err)
	}
	if got, _ := os.ReadFile(done); string(got) != filepath.Join(out, "junit.xml") {
		t.Errorf("the done file says %q", got)
	}
}

// A run that stops before its reports (here: --in-cluster outside a pod)
// still writes the done file, naming the error, and replaces an earlier
// run's.
func TestDoneFileOfARunThatStopsEarly(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	out, done := t.TempDir(), filepath.Join(t.TempDir(), "done")
	if err := os.WriteFile(done, []byte("/old/junit.xml"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runRun(t.Context(), []string{"--in-cluster", "--suites-dir", t.TempDir(), "--out", out, "--done-file", done}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("a run without a cluster succeeded")
	}
	named, _ := os.ReadFile(done)
	if string(named) != filepath.Join(out, "error.txt") {
		t.Fatalf("the done file names %q, want error.txt in --out", named)
	}
	if text, _ := os.ReadFile(string(named)); !strings.Contains(string(text), "in-cluster") {
		t.Errorf("error.txt holds %q", text)
	}
}

// A failed case is printed without its truth tables: its step's count of
// wrong cells, each wrong cell with the engine's explanation, cut at the
// bound; cases past their bound are counted.
func TestPrintFailures(t *testing.T) {
	step := reports.Step{Name: "deny", Cells: 4, Wrong: 1, Rounds: 3,
		Table: &reports.Snapshot{Endpoints: []string{"x/a", "x/b"}, Ports: []string{"80/TCP"}, Expected: []string{".X.."}, Observed: []string{"...."}},
		Mismatches: []reports.Mismatch{{From: "x/a", To: "x/b", Port: 80, Protocol: "TCP", Observed: "connected", Attempts: 3,
			Explanation: "x/a -> x/b 80/TCP: denied\n  denied by deny\n  egress at x/a: not isolated"}}}
	run := &reports.Run{Cases: []reports.Case{
		{ID: "recipes/ok", State: reports.Passed},
		{ID: "conformance/deny", State: reports.Failed, Failure: "the whole message, tables included", Steps: []reports.Step{step}},
		{ID: "conformance/other", State: reports.Failed, Failure: "x", Steps: []reports.Step{step}},
	}}
	var got bytes.Buffer
	printFailures(&got, run, 3, 1)
	want := "--- conformance/deny (failed):\n" +
		"    Step `deny`: 1 of 4 cells wrong after 3 rounds\n" +
		"    x/a -> x/b 80/TCP: expected denied, observed connected (3 attempts)\n" +
		"        x/a -> x/b 80/TCP: denied\n" +
		"    ... (2 more lines in results.json)\n" +
		"--- and 1 more failed or divergent cases (summary.md names them, results.json has their cells)\n"
	if got.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", got.String(), want)
	}
}
