package reports_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
	"github.com/netpolcheck/netpolcheck/reports"
)

// Policies on the fixture model (x/a x/b y/a, ext at 192.0.2.10 serving
// 80/TCP only).
const (
	// egressToExt lets x/a send to ext only: its subject is x/a -> ext.
	egressToExt = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-to-ext, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.0.2.0/24}}]
`
	// egressExceptExt lets x/a send to every address but ext's; ipBlock
	// matching pod IPs lets it reach the pods.
	egressExceptExt = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-except-ext, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [192.0.2.10/32]}}]
`
	// allowAll isolates x for ingress and admits everything.
	allowAll = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  ingress: [{}]
`
	// unusedIPBlock isolates x/a for egress with an ipBlock no endpoint is
	// in: no cell depends on it, so the subject is the denied cells.
	unusedIPBlock = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: unused-block, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 198.51.100.0/24}}]
`
	// ipBlockAndPods admits ext by ipBlock and the pods of x by selector:
	// the subject is ext -> x/*, whatever the selector does.
	ipBlockAndPods = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ext-and-x, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 192.0.2.10/32}}, {podSelector: {}}]
`
)

func engineFor(t *testing.T, policy string) (*matrix.Model, *matrix.Engine, *manifest.Policies) {
	t.Helper()
	policies, err := manifest.ParsePolicies("case.yaml", []byte(policy), "x")
	if err != nil {
		t.Fatal(err)
	}
	model := fixtureModel()
	e, err := matrix.NewEngine(model, policies.Items)
	if err != nil {
		t.Fatal(err)
	}
	return model, e, policies
}

// cellsOf lists a table's present cells, rendered, in Each's order.
func cellsOf(table *matrix.Table) []string {
	var out []string
	table.Each(func(c matrix.Cell) bool { out = append(out, c.String()); return true })
	return out
}

func TestSubjectOf(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		want         []string
	}{
		{name: "ipBlock to an external host: the external cells", policy: egressToExt,
			want: []string{"x/a -> ext 80/TCP"}},
		{name: "ipBlock except an external host: the pod cells the block allows", policy: egressExceptExt,
			want: []string{"x/a -> x/b 80/TCP", "x/a -> y/a 80/TCP", "x/a -> x/b 81/UDP", "x/a -> y/a 81/UDP"}},
		{name: "ipBlock beside a selector: only what the ipBlock decides", policy: ipBlockAndPods,
			want: []string{"ext -> x/a 80/TCP", "ext -> x/b 80/TCP", "ext -> x/a 81/UDP", "ext -> x/b 81/UDP"}},
		{name: "no ipBlock: the denied cells", policy: fixturePolicy,
			want: []string{"y/a -> x/a 80/TCP", "y/a -> x/b 80/TCP", "ext -> x/a 80/TCP", "ext -> x/b 80/TCP",
				"x/a -> x/b 81/UDP", "x/b -> x/a 81/UDP", "y/a -> x/a 81/UDP", "y/a -> x/b 81/UDP", "ext -> x/a 81/UDP", "ext -> x/b 81/UDP"}},
		{name: "an ipBlock that decides no cell: the denied cells", policy: unusedIPBlock,
			want: []string{"x/a -> x/b 80/TCP", "x/a -> y/a 80/TCP", "x/a -> ext 80/TCP", "x/a -> x/b 81/UDP", "x/a -> y/a 81/UDP"}},
		{name: "nothing denied, no ipBlock: none", policy: allowAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model, e, policies := engineFor(t, tc.policy)
			subject, err := reports.SubjectOf(model, policies.Items, e.Table())
			if err != nil {
				t.Fatal(err)
			}
			if got := cellsOf(subject); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("subject:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// stepWithoutExternals probes the fixture with policy on a cluster that
// enforces it, as a provider without external hosts does: the cells of ext
// are left out.
func stepWithoutExternals(t *testing.T, policy string) reports.Step {
	t.Helper()
	model, e, policies := engineFor(t, policy)
	expected := e.Table()
	probed, endpoints, err := reports.Reachable(expected, e.Endpoints(), func(ep matrix.Endpoint) bool { return !ep.External })
	if err != nil {
		t.Fatal(err)
	}
	if len(endpoints) != 3 || len(probed.Endpoints()) != 3 {
		t.Fatalf("reachable endpoints %v", probed.Endpoints())
	}
	subject, err := reports.SubjectOf(model, policies.Items, expected)
	if err != nil {
		t.Fatal(err)
	}
	runner := &matrix.Runner{Transport: cluster{expected: expected, enforcing: true}, Convergence: -1}
	rep, err := runner.Run(context.Background(), probed, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	return reports.StepOf("apply", rep, e, reports.Coverage{Expected: expected, Subject: subject})
}

func TestStepOfCountsCellsNotProbed(t *testing.T) {
	for _, tc := range []struct {
		name                                           string
		policy                                         string
		cells, notProbed, subject, subjectNotProbed    int
		wantSnapshot                                   []string
		wantSubjectNotProbed, wantAnySubjectCellProbed bool
	}{
		// ext serves 80/TCP only: 3 pods x 3 pods x 2 ports probed; ext's
		// row and column on 80/TCP (7 cells) and its row on 81/UDP (3) are
		// not.
		{name: "ipBlock to ext", policy: egressToExt, cells: 18, notProbed: 10, subject: 1, subjectNotProbed: 1,
			wantSnapshot: []string{".XX?" + "...?" + "...?" + "????", ".XX-" + "...-" + "...-" + "???-"}, wantSubjectNotProbed: true},
		{name: "ingress by namespace", policy: fixturePolicy, cells: 18, notProbed: 10, subject: 10, subjectNotProbed: 4,
			wantSnapshot: []string{"...?" + "...?" + "XX.?" + "????", ".X.-" + "X..-" + "XX.-" + "???-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := stepWithoutExternals(t, tc.policy)
			got := []int{step.Cells, step.NotProbed, step.Subject, step.SubjectNotProbed, step.Wrong}
			want := []int{tc.cells, tc.notProbed, tc.subject, tc.subjectNotProbed, 0}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("cells, not probed, subject, subject not probed, wrong = %v, want %v", got, want)
			}
			if strings.Join(step.Table.Endpoints, " ") != "x/a x/b y/a ext" || fmt.Sprint(step.Table.Observed) != fmt.Sprint(tc.wantSnapshot) {
				t.Errorf("snapshot %v observed %q, want %q", step.Table.Endpoints, step.Table.Observed, tc.wantSnapshot)
			}
			c := reports.Case{State: reports.Passed, Steps: []reports.Step{step}}
			if c.SubjectNotProbed() != tc.wantSubjectNotProbed || c.NotProbed() != tc.notProbed {
				t.Errorf("case: subject not probed %v, %d cells not probed", c.SubjectNotProbed(), c.NotProbed())
			}
		})
	}
}

func TestDivergentNeedsImplementationDefinedWrongCells(t *testing.T) {
	id := []string{reports.LabelImplementationDefined}
	for _, tc := range []struct {
		name   string
		c      reports.Case
		want   bool
		reason string
	}{
		{name: "only implementation-defined wrong cells", want: true,
			c: reports.Case{State: reports.Failed, Labels: id, Steps: []reports.Step{{Cells: 9, Wrong: 2, ImplementationDefinedWrong: 2}}}},
		{name: "failed before any step (pods never ready)",
			c: reports.Case{State: reports.Failed, Labels: id, Failure: "pod x/a is not ready"}},
		{name: "failed in a step without wrong cells (transport error, document contradicts the engine)",
			c: reports.Case{State: reports.Failed, Labels: id, Failure: "the engine contradicts the stated outcome",
				Steps: []reports.Step{{Cells: 9}}}},
		{name: "one wrong cell the API decides",
			c: reports.Case{State: reports.Failed, Labels: id, Steps: []reports.Step{{Cells: 9, Wrong: 2, ImplementationDefinedWrong: 1}}}},
		{name: "a check through a Service disagrees",
			c: reports.Case{State: reports.Failed, Labels: id, Steps: []reports.Step{{Cells: 9, Wrong: 1, ImplementationDefinedWrong: 1,
				Services: []reports.ServiceCheck{{Agrees: false}}}}}},
		{name: "not labelled ImplementationDefined",
			c: reports.Case{State: reports.Failed, Steps: []reports.Step{{Cells: 9, Wrong: 2, ImplementationDefinedWrong: 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Divergent(); got != tc.want {
				t.Errorf("Divergent() = %v, want %v", got, tc.want)
			}
			run := &reports.Run{Name: "r", Cases: []reports.Case{tc.c}}
			run.Cases[0].ID, run.Cases[0].Suite = "conformance/x", "conformance"
			want := reports.Failed
			if tc.want {
				want = reports.Divergent
			}
			if got := reports.Compare([]*reports.Run{run}).Cases[0].Results[0].Outcome; got != want {
				t.Errorf("comparison outcome %s, want %s", got, want)
			}
		})
	}
}

// junitWith is a Ginkgo-shaped report with one case of the given status
// carrying c as its netpolcheck.case property.
func junitWith(t *testing.T, status string, c reports.Case) string {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var escaped strings.Builder
	if err := xml.EscapeText(&escaped, data); err != nil {
		t.Fatal(err)
	}
	failure := ""
	if status == "failed" {
		failure = `<failure message="wrong cells" type="failed"></failure>`
	}
	return `<testsuites><testsuite name="netpolcheck conformance">` +
		`<testcase name="[It] Conformance conformance/ipblock-external-egress egress to one external host [Conformance, IPBlock]" classname="netpolcheck conformance" status="` + status + `" time="2">` +
		failure + `<properties><property name="netpolcheck.case" value="` + escaped.String() + `"></property></properties></testcase>` +
		`</testsuite></testsuites>`
}

func TestParseJUnitIncomplete(t *testing.T) {
	unprobed := reports.Step{Name: "apply", Cells: 18, NotProbed: 7, Subject: 1, SubjectNotProbed: 1}
	partly := reports.Step{Name: "apply", Cells: 18, NotProbed: 7, Subject: 10, SubjectNotProbed: 4}
	for _, tc := range []struct {
		name, status string
		steps        []reports.Step
		want         string
	}{
		{name: "passed, no subject cell probed", status: "passed", steps: []reports.Step{unprobed}, want: reports.Incomplete},
		{name: "passed, no subject cell probed in either step", status: "passed", steps: []reports.Step{unprobed, unprobed}, want: reports.Incomplete},
		{name: "passed, one step's subject probed", status: "passed", steps: []reports.Step{unprobed, partly}, want: reports.Passed},
		{name: "passed, subject partly probed", status: "passed", steps: []reports.Step{partly}, want: reports.Passed},
		{name: "passed, every cell probed", status: "passed", steps: []reports.Step{{Name: "apply", Cells: 25, Subject: 3}}, want: reports.Passed},
		{name: "failed stays failed", status: "failed", steps: []reports.Step{unprobed}, want: reports.Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, err := reports.ParseJUnit(strings.NewReader(junitWith(t, tc.status, reports.Case{Steps: tc.steps})), "kind")
			if err != nil {
				t.Fatal(err)
			}
			c := run.Cases[0]
			if c.ID != "conformance/ipblock-external-egress" || c.State != tc.want {
				t.Errorf("case %s: %s, want %s", c.ID, c.State, tc.want)
			}
			wantNotProbed := 0
			for _, s := range tc.steps {
				wantNotProbed += s.NotProbed
			}
			if c.NotProbed() != wantNotProbed {
				t.Errorf("%d cells not probed, want %d", c.NotProbed(), wantNotProbed)
			}
		})
	}
}

// kindRuns are a local run that probes everything and a "kind" run of the
// same two cases without external hosts: the ipBlock case is incomplete
// there, the namespace case passes with its external cells not probed.
func kindRuns(t *testing.T) (local, kind *reports.Run) {
	t.Helper()
	newCase := func(id string, state string, steps ...reports.Step) reports.Case {
		return reports.Case{ID: id, Name: "case " + id, Suite: "conformance", Labels: []string{"Conformance", "IPBlock"}, State: state, Steps: steps}
	}
	local = &reports.Run{Name: "local", CNI: "reference", Provider: "local", Cases: []reports.Case{
		newCase("conformance/ipblock-external-egress", reports.Passed, probeStep(t, true, "")),
		newCase("conformance/namespace", reports.Passed, probeStep(t, true, "")),
	}}
	kind = &reports.Run{Name: "kind", CNI: "calico", Provider: "kind", Cases: []reports.Case{
		newCase("conformance/ipblock-external-egress", reports.Incomplete, stepWithoutExternals(t, egressToExt)),
		newCase("conformance/namespace", reports.Passed, stepWithoutExternals(t, fixturePolicy)),
	}}
	return local, kind
}

func TestIncompleteAndNotProbedInReports(t *testing.T) {
	local, kind := kindRuns(t)
	path := filepath.Join(t.TempDir(), "results.json")
	if err := kind.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := reports.ReadRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Cases[0].State != reports.Incomplete || back.Cases[0].Steps[0].NotProbed != 10 || back.Cases[0].Steps[0].SubjectNotProbed != 1 {
		t.Errorf("results.json round trip: %s, step %+v", back.Cases[0].State, back.Cases[0].Steps[0])
	}

	summary := reports.Summary(back)
	for _, want := range []string{
		"2 cases: 1 passed, 0 failed, 0 divergent, 1 incomplete, 0 skipped; 20 cells not probed.",
		"| conformance | 1 | 0 | 0 | 1 | 0 | 20 | 2 |",
		"| IPBlock | 1 | 1 | 2 |",
		"## Incomplete cases (1)\n\n- `conformance/ipblock-external-egress` case conformance/ipblock-external-egress: 10 cells not probed\n",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	cmp := reports.Compare([]*reports.Run{local, back})
	if r := cmp.Runs[1]; r.Passed != 1 || r.Incomplete != 1 || r.NotProbed != 20 || r.Failed != 0 {
		t.Errorf("kind run summary %+v", r)
	}
	if l := cmp.Labels[1]; l.Label != "IPBlock" || l.Runs[1] != (reports.LabelCount{Passed: 1, Incomplete: 1, Total: 2}) {
		t.Errorf("label %s: %+v", l.Label, l.Runs)
	}
	md := cmp.Markdown()
	for _, want := range []string{
		"| kind | calico | kind | 1 | 0 | 0 | 1 | 0 | 0 | 20 |",
		"| IPBlock | 2/2 | 1/2 (❔ 1) |",
		"| `conformance/ipblock-external-egress` case conformance/ipblock-external-egress | Conformance, IPBlock | ✅ | ❔ 10 not probed |",
		"| `conformance/namespace` case conformance/namespace | Conformance, IPBlock | ✅ | ✅ 10 not probed |",
		"❔ incomplete",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, page)
	for _, want := range []string{
		`<td class="outcome o-incomplete" title="incomplete"><span class="badge b-incomplete">INCOMPLETE</span> <span class="not-probed-count">10 not probed</span>`,
		`<td class="num incomplete"><a href="#run-2">1</a></td><td class="num cells-not-probed">20</td>`,
		"INCOMPLETE</span> incomplete: none of the case&#39;s subject cells could be probed; not a pass.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}
