package reports_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reports"
)

func TestCompare(t *testing.T) {
	reference, none := fixtureRuns(t)
	cmp := reports.Compare([]*reports.Run{reference, none})

	var order []string
	outcomes := map[string][]string{}
	for _, row := range cmp.Cases {
		order = append(order, row.ID)
		for _, res := range row.Results {
			outcomes[row.ID] = append(outcomes[row.ID], res.Outcome)
			if (res.Case == nil) != (res.Outcome == reports.Missing) {
				t.Errorf("%s: outcome %s with case %v", row.ID, res.Outcome, res.Case)
			}
		}
	}
	wantOrder := []string{"conformance/ipblock-pod-ip", "conformance/sctp", "generated/0042", "recipes/seed001/1.2", "recipes/seed001/1.10"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("rows %q, want %q", order, wantOrder)
	}
	for id, want := range map[string][]string{
		"conformance/ipblock-pod-ip": {reports.Passed, reports.Divergent},
		"conformance/sctp":           {reports.Passed, reports.Skipped},
		"generated/0042":             {reports.Passed, reports.Missing},
		"recipes/seed001/1.2":        {reports.Passed, reports.Failed},
		"recipes/seed001/1.10":       {reports.Passed, reports.Failed},
	} {
		if !slices.Equal(outcomes[id], want) {
			t.Errorf("%s: %q, want %q", id, outcomes[id], want)
		}
	}

	wantRuns := []reports.RunSummary{
		{Name: "reference", CNI: "reference", Provider: "local", Passed: 5, DurationSeconds: 61},
		{Name: "none", CNI: "none", Provider: "local", Failed: 2, Divergent: 1, Skipped: 1, Missing: 1, DurationSeconds: 6},
	}
	if !slices.Equal(cmp.Runs, wantRuns) {
		t.Errorf("runs:\n%+v\nwant:\n%+v", cmp.Runs, wantRuns)
	}

	labels := map[string][]reports.LabelCount{}
	var labelOrder []string
	for _, l := range cmp.Labels {
		labels[l.Label] = l.Runs
		labelOrder = append(labelOrder, l.Label)
	}
	if !slices.IsSorted(labelOrder) || len(labelOrder) != 7 {
		t.Errorf("labels %q", labelOrder)
	}
	for label, want := range map[string][]reports.LabelCount{
		"Ingress":                          {{Passed: 3, Total: 3}, {Total: 2}},
		"SCTP":                             {{Passed: 1, Total: 1}, {}},
		reports.LabelImplementationDefined: {{Passed: 1, Total: 1}, {Divergent: 1, Total: 1}},
	} {
		if !slices.Equal(labels[label], want) {
			t.Errorf("label %s: %+v, want %+v", label, labels[label], want)
		}
	}

	failing := 0
	for i := range cmp.Cases {
		if cmp.Cases[i].Failing() {
			failing++
		}
	}
	if failing != 3 {
		t.Errorf("%d failing rows, want 3", failing)
	}
}

func TestCompareEdgeCases(t *testing.T) {
	// idWrong is a step whose every wrong cell is implementation-defined.
	idWrong := []reports.Step{{Name: "apply", Cells: 10, Wrong: 1, ImplementationDefinedWrong: 1}}
	for _, tc := range []struct {
		name string
		runs []*reports.Run
		want map[string][]string // "suite|id" -> outcomes
	}{
		{
			name: "no runs",
			want: map[string][]string{},
		},
		{
			name: "first occurrence of a repeated case wins; unknown states fail",
			runs: []*reports.Run{{Name: "a", Cases: []reports.Case{
				{ID: "generated/0001", Suite: "generated", State: reports.Passed},
				{ID: "generated/0001", Suite: "generated", State: reports.Failed},
				{ID: "generated/0002", Suite: "generated", State: "pending"},
			}}},
			want: map[string][]string{"generated|generated/0001": {reports.Passed}, "generated|generated/0002": {reports.Failed}},
		},
		{
			name: "same ID in two suites; implementation-defined if any run says so",
			runs: []*reports.Run{
				{Name: "a", Cases: []reports.Case{
					{ID: "TestX", Suite: "pkg/a", State: reports.Failed},
					{ID: "TestX", Suite: "pkg/b", State: reports.Failed, Labels: []string{reports.LabelImplementationDefined}, Steps: idWrong},
				}},
				{Name: "b", Cases: []reports.Case{
					{ID: "TestX", Suite: "pkg/b", State: reports.Failed, Steps: idWrong},
				}},
			},
			want: map[string][]string{
				"pkg/a|TestX": {reports.Failed, reports.Missing},
				"pkg/b|TestX": {reports.Divergent, reports.Divergent},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmp := reports.Compare(tc.runs)
			got := map[string][]string{}
			for _, row := range cmp.Cases {
				for _, res := range row.Results {
					got[row.Suite+"|"+row.ID] = append(got[row.Suite+"|"+row.ID], res.Outcome)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("rows %q, want %q", got, tc.want)
			}
			for key, want := range tc.want {
				if !slices.Equal(got[key], want) {
					t.Errorf("%s: %q, want %q", key, got[key], want)
				}
			}
		})
	}
}

func TestImplementationDefinedCaseWithOtherWrongCellsFails(t *testing.T) {
	_, none := fixtureRuns(t)
	c := none.Cases[2] // conformance/ipblock-pod-ip, divergent in the fixture
	if !c.Divergent() {
		t.Fatalf("fixture case %s is not divergent", c.ID)
	}
	c.Steps = append([]reports.Step(nil), c.Steps...)
	c.Steps[0].Mismatches = append([]reports.Mismatch(nil), c.Steps[0].Mismatches...)
	c.Steps[0].Mismatches[0].ImplementationDefined = nil
	c.Steps[0].ImplementationDefinedWrong--
	if c.Divergent() {
		t.Errorf("a wrong cell outside implementation-defined behaviour still counts as a divergence")
	}
	none.Cases[2] = c
	cmp := reports.Compare([]*reports.Run{none})
	if cmp.Runs[0].Divergent != 0 || cmp.Runs[0].Failed != 3 {
		t.Errorf("failed %d, divergent %d; want 3 and 0", cmp.Runs[0].Failed, cmp.Runs[0].Divergent)
	}
}

func TestImplementationDefinedCaseWithWrongServiceCheckFails(t *testing.T) {
	_, none := fixtureRuns(t)
	c := none.Cases[2] // conformance/ipblock-pod-ip, divergent in the fixture
	c.Steps = append([]reports.Step(nil), c.Steps...)
	wrong := reports.ServiceCheck{From: "x/a", To: "y/b", Port: 80, Protocol: "TCP", Service: "y/web", By: "clusterIP",
		ServicePort: 8080, Expected: false, Observed: "10.96.0.20:8080/TCP: connected", Rounds: 12}
	c.Steps[0].Services = []reports.ServiceCheck{wrong}
	if c.Divergent() {
		t.Errorf("a case whose check through a Service disagrees still counts as a divergence")
	}
	none.Cases[2] = c
	cmp := reports.Compare([]*reports.Run{none})
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	line := wrong.String()
	if !strings.Contains(cmp.Markdown(), line) {
		t.Errorf("the Markdown comparison does not show the wrong check %q", line)
	}
	data := pageData(t, parsePage(t, page))
	if got := data.Cases[c.ID][0].Steps[0].Services; len(got) != 1 || got[0] != line {
		t.Errorf("the HTML comparison's wrong checks %q, want %q", got, line)
	}
}
