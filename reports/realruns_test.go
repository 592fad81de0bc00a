package reports_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reports"
)

// TestRealRuns checks the real runs of the suites against the local cluster
// made by `make test`: one with the reference enforcer, one with its none
// profile (which enforces nothing, as Flannel), one with kube-router's
// policy controller (checked against its committed snapshot by
// checkAgainstSnapshot), and the IPBlock conformance cases without external
// hosts. The reference run must pass every case; the
// none run must fail exactly the cases whose expected tables deny something,
// and no other; both probe every cell. It then renders the comparison of the
// two runs, writes it next to them, and opens the HTML to check it shows
// those counts. The run without external hosts is checked by
// checkRunWithoutExternalHosts.
func TestRealRuns(t *testing.T) {
	dir := os.Getenv("NETPOLCHECK_RUNS")
	if dir == "" {
		t.Skip("needs the real runs: `make test` sets NETPOLCHECK_RUNS=DIR holding reference/, none/ and kube-router/ results")
	}
	ref, err := reports.ReadRun(filepath.Join(dir, "reference", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	none, err := reports.ReadRun(filepath.Join(dir, "none", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	kubeRouter, err := reports.ReadRun(filepath.Join(dir, "kube-router", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 || len(ref.Cases) != len(none.Cases) {
		t.Fatalf("%d cases in the reference run, %d in the none run", len(ref.Cases), len(none.Cases))
	}
	for _, c := range ref.Cases {
		if c.State != reports.Passed {
			t.Errorf("reference run: %s %s: %s", c.ID, c.State, firstLine(c.Failure))
		}
	}
	for _, run := range []*reports.Run{ref, none} {
		for _, c := range run.Cases {
			if n := c.NotProbed(); n > 0 || c.State == reports.Incomplete {
				t.Errorf("%s run: %s is %s with %d cells not probed: the local cluster probes every cell", run.Name, c.ID, c.State, n)
			}
		}
	}
	wantFailed := checkFailsWhatNeedsEnforcement(t, none)
	t.Logf("none profile: %d of %d cases need enforcement and fail", wantFailed, len(none.Cases))
	checkServiceChecks(t, ref)
	for _, run := range []*reports.Run{ref, none, kubeRouter} {
		t.Logf("%s run: time to enforce %s", run.Name, run.TimeToEnforce)
		if run.TimeToEnforce == nil {
			t.Errorf("%s run: results.json records no time to enforce", run.Name)
		}
	}
	if ref.TimeToEnforce != nil && ref.TimeToEnforce.NotEnforced != 0 {
		t.Errorf("reference run: %d cases never agreed, yet every case passed", ref.TimeToEnforce.NotEnforced)
	}
	checkAgainstSnapshot(t, kubeRouter, "kube-router")

	comparison := reports.Compare([]*reports.Run{ref, none, kubeRouter})
	page, err := comparison.HTML()
	if err != nil {
		t.Fatal(err)
	}
	// The job summary the CNI-matrix workflow publishes: GitHub drops one
	// over 1 MiB, and the full Markdown of a run that enforces nothing is
	// several times that.
	const summaryLimit = 1_000_000
	full, summary := comparison.Markdown(), comparison.MarkdownWithin(summaryLimit)
	for name, body := range map[string]string{"comparison.html": page, "comparison.md": full, "comparison-summary.md": summary} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("comparison: HTML %d bytes, Markdown %d bytes, job summary %d bytes", len(page), len(full), len(summary))
	head, _, _ := strings.Cut(full, "\n## Cases")
	if len(summary) > summaryLimit || !strings.HasPrefix(summary, head) {
		t.Errorf("the job summary (%d bytes, limit %d) lacks the run and label tables", len(summary), summaryLimit)
	}
	if len(page) >= maxPageBytes {
		t.Errorf("the HTML comparison is %d bytes, want under %d", len(page), maxPageBytes)
	}
	// The wrong cells Chromium counts are the none run's alone.
	refAndNone, err := reports.Compare([]*reports.Run{ref, none}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	checkRealComparisonInChromium(t, refAndNone, none, filepath.Join(dir, "artifacts"))
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	rows := findAll(findAll(doc, "table", "summary")[0], "tr", "")[1:]
	if len(rows) != 3 {
		t.Fatalf("%d runs in the summary table, want reference, none and kube-router", len(rows))
	}
	divergent := 0
	for _, c := range none.Cases {
		if c.Divergent() {
			divergent++
		}
	}
	kr := countRun(kubeRouter)
	for i, want := range [][5]int{{len(ref.Cases), 0, 0, 0, 0}, {len(none.Cases) - wantFailed, wantFailed - divergent, divergent, 0, 0},
		{kr.passed, kr.failed, kr.divergent, kr.incomplete, 0}} {
		cells := findAll(rows[i], "td", "")
		got := [5]int{number(t, text(cells[4])), number(t, text(cells[5])), number(t, text(cells[6])),
			number(t, text(findAll(rows[i], "td", "incomplete")[0])), number(t, text(findAll(rows[i], "td", "cells-not-probed")[0]))}
		if got != want {
			t.Errorf("run %s: passed, failed, divergent, incomplete, cells not probed = %v in the HTML, want %v", text(cells[0]), got, want)
		}
	}
	checkRunWithoutExternalHosts(t, dir, ref)
}

// checkRunWithoutExternalHosts checks the run of the IPBlock conformance
// cases without external hosts (no-externals/): every case keeps its
// external cells in its tables, reports them as not probed and fails
// nowhere; the cases about external hosts alone are incomplete, and so is
// every case none of whose subject cells was probed; results.json,
// summary.md and the comparison with the reference run say so.
func checkRunWithoutExternalHosts(t *testing.T, dir string, ref *reports.Run) {
	t.Helper()
	out := filepath.Join(dir, "no-externals")
	run, err := reports.ReadRun(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	incomplete, notProbed, ran := 0, 0, 0
	for _, c := range run.Cases {
		if c.State == reports.Skipped { // by the label filter
			continue
		}
		ran++
		notProbed += c.NotProbed()
		if c.NotProbed() == 0 {
			t.Errorf("no-externals run: %s probed every cell, yet the probe model has external hosts", c.ID)
		}
		for _, s := range c.Steps {
			if s.Table == nil || !strings.Contains(strings.Join(s.Table.Endpoints, " "), "ext-192-0-2-10") {
				t.Errorf("no-externals run: %s step %q: the external host is not in the table", c.ID, s.Name)
			}
		}
		switch {
		case c.State == reports.Incomplete:
			incomplete++
		case c.State != reports.Passed:
			t.Errorf("no-externals run: %s %s: %s", c.ID, c.State, firstLine(c.Failure))
		}
		if c.SubjectNotProbed() != (c.State == reports.Incomplete) {
			t.Errorf("no-externals run: %s is %s, yet subject not probed is %v", c.ID, c.State, c.SubjectNotProbed())
		}
	}
	for _, id := range []string{"conformance/ipblock-external-egress", "conformance/ipblock-external-ingress", "conformance/ipblock-everything-except-pods"} {
		i := slices.IndexFunc(run.Cases, func(c reports.Case) bool { return c.ID == id })
		if i < 0 || run.Cases[i].State != reports.Incomplete {
			t.Errorf("no-externals run: %s is not incomplete", id)
		}
	}
	if ran == 0 {
		t.Fatal("no case ran without external hosts")
	}
	t.Logf("no-externals run: %d cases ran, %d incomplete, %d cells not probed", ran, incomplete, notProbed)
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d incomplete, ", incomplete); !strings.Contains(string(summary), want) ||
		!strings.Contains(string(summary), fmt.Sprintf("; %d cells not probed.", notProbed)) {
		t.Errorf("summary.md lacks %q and %d cells not probed", want, notProbed)
	}
	cmp := reports.Compare([]*reports.Run{ref, run})
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "comparison.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	row := findAll(findAll(doc, "table", "summary")[0], "tr", "")[2]
	got := [2]int{number(t, text(findAll(row, "td", "incomplete")[0])), number(t, text(findAll(row, "td", "cells-not-probed")[0]))}
	if got != [2]int{incomplete, notProbed} {
		t.Errorf("comparison: incomplete, cells not probed = %v, want %v", got, [2]int{incomplete, notProbed})
	}
	if n := len(findAll(findAll(doc, "table", "cases")[0], "td", "o-incomplete")); n != incomplete {
		t.Errorf("comparison: %d incomplete cells in the case table, want %d", n, incomplete)
	}
}

// checkRealComparisonInChromium opens the comparison of the real runs at the
// first case the none run failed with wrong cells, checks that the case is
// expanded with its expected and observed grids and as many wrong cells
// marked as the run recorded, and keeps a screenshot in artifacts.
func checkRealComparisonInChromium(t *testing.T, page string, none *reports.Run, artifacts string) {
	t.Helper()
	i := slices.IndexFunc(none.Cases, func(c reports.Case) bool {
		return c.State == reports.Failed && len(c.Steps) > 0 && c.Steps[0].Table != nil && c.Steps[0].Wrong > 0
	})
	if i < 0 {
		t.Fatal("the none run failed no case with wrong cells")
	}
	c := none.Cases[i]
	wantWrong := 0
	for _, s := range c.Steps {
		wantWrong += s.Wrong
	}
	doc := openCaseInChromium(t, page, c.ID, filepath.Join(artifactsDir(t, artifacts), "comparison-real.png"))
	details := openDetails(t, doc, c.ID)
	wrong := 0
	for _, g := range findAll(details, "table", "observed") {
		wrong += len(findAll(g, "td", "wrong"))
	}
	if wrong != wantWrong || len(findAll(details, "table", "expected")) == 0 {
		t.Errorf("%s opened in Chromium: %d wrong cells marked, want %d", c.ID, wrong, wantWrong)
	}
	t.Logf("Chromium opened %s: %d wrong cells marked", c.ID, wrong)
}

// needsEnforcement reports whether some step of the case expects a denied cell.
// checkFailsWhatNeedsEnforcement checks a run of a cluster that enforces
// nothing (the reference enforcer's none profile, Flannel): it fails
// exactly the cases whose expected tables deny some cell, each with the
// readable mismatch report, and passes the others. It returns how many
// cases need enforcement.
func checkFailsWhatNeedsEnforcement(t *testing.T, run *reports.Run) int {
	t.Helper()
	n := 0
	for _, c := range run.Cases {
		needs := needsEnforcement(c)
		if needs {
			n++
		}
		switch {
		case needs && c.State != reports.Failed:
			t.Errorf("%s run: %s denies some cell but %s", run.Name, c.ID, c.State)
		case !needs && c.State != reports.Passed:
			t.Errorf("%s run: %s needs no enforcement but %s: %s", run.Name, c.ID, c.State, firstLine(c.Failure))
		case needs && !strings.Contains(c.Failure, "the cluster disagrees with the NetworkPolicy API") && !strings.Contains(c.Failure, "stated outcome"):
			t.Errorf("%s run: %s failed without the readable mismatch report: %s", run.Name, c.ID, firstLine(c.Failure))
		}
	}
	return n
}

func needsEnforcement(c reports.Case) bool {
	for _, s := range c.Steps {
		if s.Table == nil {
			continue
		}
		for _, grid := range s.Table.Expected {
			if strings.Contains(grid, "X") {
				return true
			}
		}
	}
	return false
}

func number(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q is not a count", s)
	}
	return n
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// checkServiceChecks: the reference run records every outcome the recipes
// state through a Service, each agreeing with the engine.
func checkServiceChecks(t *testing.T, ref *reports.Run) {
	t.Helper()
	want := 0
	for _, r := range recipes.All() {
		for _, s := range r.Steps {
			for _, o := range s.Expect {
				if o.Via != nil {
					want++
				}
			}
		}
	}
	got := 0
	for _, c := range ref.Cases {
		for _, s := range c.Steps {
			for _, sc := range s.Services {
				got++
				if !sc.Agrees {
					t.Errorf("reference run: %s: %s", c.ID, sc)
				}
			}
		}
	}
	t.Logf("reference run: %d checks through Services", got)
	if got != want {
		t.Errorf("reference run: %d checks through Services recorded, the recipes state %d", got, want)
	}
}
