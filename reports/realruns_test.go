package reports_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reports"
)

// TestRealRuns checks two real runs of the suites against the local cluster,
// made by `make test`: one with the reference enforcer, one with its none
// profile (which enforces nothing, as Flannel). The reference run must pass
// every case; the none run must fail exactly the cases whose expected tables
// deny something, and no other. It then renders the comparison of the two
// runs, writes it next to them, and opens the HTML to check it shows those
// counts.
func TestRealRuns(t *testing.T) {
	dir := os.Getenv("NETPOLCHECK_RUNS")
	if dir == "" {
		t.Skip("needs two real runs: `make test` sets NETPOLCHECK_RUNS=DIR holding reference/ and none/ results")
	}
	ref, err := reports.ReadRun(filepath.Join(dir, "reference", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	none, err := reports.ReadRun(filepath.Join(dir, "none", "results.json"))
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
	wantFailed := 0
	for _, c := range none.Cases {
		needs := needsEnforcement(c)
		if needs {
			wantFailed++
		}
		switch {
		case needs && c.State != reports.Failed:
			t.Errorf("none run: %s denies some cell but %s", c.ID, c.State)
		case !needs && c.State != reports.Passed:
			t.Errorf("none run: %s needs no enforcement but %s: %s", c.ID, c.State, firstLine(c.Failure))
		case needs && !strings.Contains(c.Failure, "the cluster disagrees with the NetworkPolicy API") && !strings.Contains(c.Failure, "stated outcome"):
			t.Errorf("none run: %s failed without the readable mismatch report: %s", c.ID, firstLine(c.Failure))
		}
	}
	t.Logf("none profile: %d of %d cases need enforcement and fail", wantFailed, len(none.Cases))
	checkServiceChecks(t, ref)

	comparison := reports.Compare([]*reports.Run{ref, none})
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
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	rows := findAll(findAll(doc, "table", "summary")[0], "tr", "")[1:]
	if len(rows) != 2 {
		t.Fatalf("%d runs in the summary table", len(rows))
	}
	divergent := 0
	for _, c := range none.Cases {
		if c.Divergent() {
			divergent++
		}
	}
	for i, want := range [][3]int{{len(ref.Cases), 0, 0}, {len(none.Cases) - wantFailed, wantFailed - divergent, divergent}} {
		cells := findAll(rows[i], "td", "")
		got := [3]int{number(t, text(cells[4])), number(t, text(cells[5])), number(t, text(cells[6]))}
		if got != want {
			t.Errorf("run %s: passed, failed, divergent = %v in the HTML, want %v", text(cells[0]), got, want)
		}
	}
}

// needsEnforcement reports whether some step of the case expects a denied cell.
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
