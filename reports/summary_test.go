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
		{ID: "generated/0001", Name: "g", Suite: "generated", Labels: []string{"Generated", reports.LabelImplementationDefined}, State: reports.Failed, Failure: "x"},
		{ID: "generated/0002", Suite: "generated", Labels: []string{"Generated"}, State: reports.Skipped},
	}}
	got := reports.Summary(run)
	for _, want := range []string{
		"# netpolcheck: reference (CNI reference on local)",
		"4 cases: 1 passed, 1 failed, 1 divergent, 1 skipped in 1m15s.",
		"| generated | 0 | 0 | 1 | 1 | 0 | 0s | 0s | 0s |",
		"| recipes | 1 | 1 | 0 | 0 | 2 | 300ms | 1.2s | 2s |",
		"| Recipe | 1 | 2 |",
		"| Generated | 0 | 1 |",
		"- `recipes/b` b (failed): step 1: 3 cells wrong",
		"- `generated/0001` g (divergent): x",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
