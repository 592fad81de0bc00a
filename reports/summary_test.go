package reports_test

import (
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reports"
)

func TestSummary(t *testing.T) {
	run := &reports.Run{Name: "reference", CNI: "reference", Provider: "local", DurationSeconds: 75, Cases: []reports.Case{
		{ID: "recipes/a", Suite: "recipes", Labels: []string{"Recipe", "Egress"}, State: reports.Passed,
			Steps: []reports.Step{{Convergence: reports.Convergence{P50: 0, P99: 0.25, Max: 0.5}}}},
		{ID: "recipes/b", Name: "b", Suite: "recipes", Labels: []string{"Recipe"}, State: reports.Failed, Failure: "step 1: 3 cells wrong\nmore",
			Steps: []reports.Step{{Convergence: reports.Convergence{P50: 0.3, P99: 1.2, Max: 2}}}},
		{ID: "generated/0001", Name: "g", Suite: "generated", Labels: []string{"Generated", reports.LabelImplementationDefined}, State: reports.Failed, Failure: "x",
			Steps: []reports.Step{{Cells: 10, Wrong: 2, ImplementationDefinedWrong: 2}}},
		{ID: "generated/0002", Suite: "generated", Labels: []string{"Generated"}, State: reports.Skipped},
		{ID: "generated/0003", Name: "h", Suite: "generated", Labels: []string{"Generated", "IPBlock"}, State: reports.Incomplete,
			Steps: []reports.Step{{Cells: 90, NotProbed: 36, Subject: 12, SubjectNotProbed: 12}}},
		{ID: "generated/0004", Name: "k", Suite: "generated", Labels: []string{"Generated"}, State: reports.Passed,
			Steps: []reports.Step{{Cells: 90, NotProbed: 36, Subject: 12, SubjectNotProbed: 4}}},
	}}
	got := reports.Summary(run)
	for _, want := range []string{
		"# netpolcheck: reference (CNI reference on local)",
		"6 cases: 2 passed, 1 failed, 1 divergent, 1 incomplete, 1 skipped in 1m15s; 72 cells not probed.",
		"| suite | passed | failed | divergent | incomplete | skipped | cells not probed | steps |",
		"| generated | 1 | 0 | 1 | 1 | 1 | 72 | 3 | 0s | 0s | 0s |",
		"| recipes | 1 | 1 | 0 | 0 | 0 | 0 | 2 | 300ms | 1.2s | 2s |",
		"| Recipe | 1 | 0 | 2 |",
		"| Generated | 1 | 1 | 3 |",
		"| IPBlock | 0 | 1 | 1 |",
		"- `recipes/b` b (failed): step 1: 3 cells wrong",
		"- `generated/0001` g (divergent): x",
		"## Incomplete cases (1)\n\n- `generated/0003` h: 36 cells not probed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
