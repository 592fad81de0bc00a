package conformance_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reports"
)

// resultsDir holds the committed runs of third-party CNIs, one directory
// per CNI (see docs/results/README.md).
const resultsDir = "../../docs/results"

// Files of a CNI's directory under resultsDir.
const (
	// upstreamJUnit is the JUnit report of upstream's netpol e2e against the
	// CNI (upstreamJUnit + ".gz" when gzipped).
	upstreamJUnit = "upstream-e2e.xml"
	// verdictsFile is the table TestUpstreamVerdicts renders.
	verdictsFile = "upstream-verdicts.md"
	// explanationsSection is the heading, in the CNI's README.md, of the
	// section that explains every disagreement of the table.
	explanationsSection = "## Upstream's verdicts beside netpolcheck's"
)

// updateVerdictsEnv, set to 1, makes TestUpstreamVerdicts write the tables
// instead of checking them.
const updateVerdictsEnv = "NETPOLCHECK_UPDATE_VERDICTS"

// upstreamSpecPrefix starts the full text of every spec of upstream's netpol
// e2e; the e2e.test JUnit report lists every other spec of e2e.test too.
const upstreamSpecPrefix = "[sig-network] Netpol"

// TestUpstreamVerdicts renders, for each CNI of docs/results with a JUnit
// report of upstream's netpol e2e, the table that sets each upstream spec's
// verdict beside netpolcheck's verdict, in the CNI's committed run, on the
// case README.md maps it to, and compares it with the committed
// upstream-verdicts.md (NETPOLCHECK_UPDATE_VERDICTS=1 rewrites it). Every
// case on which the two disagree must be named in the CNI README's section
// "Upstream's verdicts beside netpolcheck's".
func TestUpstreamVerdicts(t *testing.T) {
	mapping, err := readmeMapping("README.md")
	if err != nil {
		t.Fatal(err)
	}
	junits, err := filepath.Glob(filepath.Join(resultsDir, "*", upstreamJUnit+"*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(junits) == 0 {
		t.Fatalf("no %s[.gz] in any directory of %s", upstreamJUnit, resultsDir)
	}
	for _, junit := range junits {
		dir := filepath.Dir(junit)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			checkVerdicts(t, dir, filepath.Base(junit), mapping)
		})
	}
}

// checkVerdicts renders the table of one CNI's directory and checks it and
// the explanation of its disagreements.
func checkVerdicts(t *testing.T, dir, junitName string, mapping map[upstreamTest]readmeRow) {
	upstream, err := readUpstreamRun(filepath.Join(dir, junitName))
	if err != nil {
		t.Fatal(err)
	}
	resultsName := "results.json"
	if _, err := os.Stat(filepath.Join(dir, resultsName)); err != nil {
		resultsName += ".gz"
	}
	run, err := reports.ReadRun(filepath.Join(dir, resultsName))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := verdictRows(upstream.specs, mapping, run)
	if err != nil {
		t.Fatalf("%s against %s: %v", junitName, filepath.Join(dir, resultsName), err)
	}
	got := renderVerdicts(filepath.Base(dir), junitName, resultsName, upstream, run, rows)
	path := filepath.Join(dir, verdictsFile)
	if os.Getenv(updateVerdictsEnv) == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	} else {
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (%s=1 writes it)", err, updateVerdictsEnv)
		}
		if d := lineDiff(string(committed), got); d != "" {
			t.Errorf("%s is out of date (- committed, + rendered; %s=1 rewrites it):\n%s", path, updateVerdictsEnv, d)
		}
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range unexplained(rows, string(readme)) {
		t.Errorf("%s/README.md, section %q, does not explain why upstream's %q (%s) and netpolcheck's %s (%s) disagree",
			dir, explanationsSection, r.spec.test.it, r.spec.verdict, r.caseID, r.caseVerdict)
	}
}

// unexplained returns the rows that disagree and whose case readme's
// section explanationsSection does not name in backquotes.
func unexplained(rows []verdictRow, readme string) []verdictRow {
	section := markdownSection(readme, explanationsSection)
	var out []verdictRow
	for _, r := range rows {
		if r.agreement() == disagree && !strings.Contains(section, "`"+r.caseID+"`") {
			out = append(out, r)
		}
	}
	return out
}

// upstreamRun is what TestUpstreamVerdicts takes from the JUnit report of
// an e2e.test run.
type upstreamRun struct {
	// started is the run's start, as Ginkgo writes it.
	started string
	// specs are the run's netpol specs, in the report's order.
	specs []upstreamSpec
}

// upstreamSpec is one spec of upstream's netpol e2e in a JUnit report.
type upstreamSpec struct {
	// name is the test case's name, less Ginkgo's "[It] ".
	name string
	// verdict is reports.Passed, reports.Failed or reports.Skipped, and
	// reason why it failed or was skipped, when the report says.
	verdict, reason string
	// test is the (context, It) the spec matches; verdictRows fills it in.
	test upstreamTest
}

// Ginkgo's JUnit report, as far as TestUpstreamVerdicts reads it.
type (
	upstreamJUnitReport struct {
		Suites []upstreamJUnitSuite `xml:"testsuite"`
	}
	upstreamJUnitSuite struct {
		Timestamp  string `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string                `xml:"name,attr"`
			Status  string                `xml:"status,attr"`
			Skipped *upstreamJUnitProblem `xml:"skipped"`
			Failure *upstreamJUnitProblem `xml:"failure"`
			Error   *upstreamJUnitProblem `xml:"error"`
		} `xml:"testcase"`
	}
	upstreamJUnitProblem struct {
		Message string `xml:"message,attr"`
	}
)

// readUpstreamRun reads the netpol specs of an e2e.test JUnit report,
// gzipped or not. A spec skipped without a message from the spec itself
// (Ginkgo writes "skipped" alone for the specs its filters leave out) gets
// the skip regular expression of the run (the suite's SkipStrings) that
// matches its name as its reason.
func readUpstreamRun(path string) (upstreamRun, error) {
	data, err := reports.ReadFile(path)
	if err != nil {
		return upstreamRun{}, err
	}
	var report upstreamJUnitReport
	if err := xml.Unmarshal(data, &report); err != nil {
		return upstreamRun{}, fmt.Errorf("%s: not a JUnit report: %w", path, err)
	}
	var run upstreamRun
	for _, suite := range report.Suites {
		if run.started == "" {
			run.started = suite.Timestamp
		}
		var skips []*regexp.Regexp
		for _, p := range suite.Properties {
			if p.Name != "SkipStrings" || p.Value == "" {
				continue
			}
			for _, s := range strings.Split(p.Value, ",") {
				re, err := regexp.Compile(s)
				if err != nil {
					return upstreamRun{}, fmt.Errorf("%s: SkipStrings %q: %w", path, s, err)
				}
				skips = append(skips, re)
			}
		}
		for _, tc := range suite.Cases {
			name, ok := strings.CutPrefix(tc.Name, "[It] ")
			if !ok || !strings.HasPrefix(name, upstreamSpecPrefix) {
				continue
			}
			spec := upstreamSpec{name: name, verdict: reports.Passed}
			switch {
			case tc.Failure != nil || tc.Error != nil:
				spec.verdict = reports.Failed
				for _, p := range []*upstreamJUnitProblem{tc.Failure, tc.Error} {
					if p != nil && spec.reason == "" {
						spec.reason = firstLine(p.Message)
					}
				}
			case tc.Skipped != nil:
				spec.verdict = reports.Skipped
				spec.reason = strings.TrimLeft(strings.TrimPrefix(tc.Skipped.Message, "skipped"), " -")
				for _, re := range skips {
					if spec.reason == "" && re.MatchString(name) {
						spec.reason = fmt.Sprintf("by the run's skip `%s`", re)
					}
				}
				spec.reason = firstLine(spec.reason)
			case tc.Status != "" && tc.Status != "passed":
				return upstreamRun{}, fmt.Errorf("%s: spec %q has status %q but neither a failure nor a skip", path, name, tc.Status)
			}
			run.specs = append(run.specs, spec)
		}
	}
	if len(run.specs) == 0 {
		return upstreamRun{}, fmt.Errorf("%s: no spec whose name starts with %q", path, upstreamSpecPrefix)
	}
	return run, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// bracketGroup is a "[...]" of a spec name: "[sig-network]", a feature tag
// such as "[Feature:NetworkPolicy]", "[LinuxOnly]", or the group of Ginkgo
// labels the JUnit report appends.
var bracketGroup = regexp.MustCompile(`\[[^\[\]]*\]`)

// specWords are the words of a spec's full text or of a (context, It)
// pair, without bracket groups: what a JUnit name and the README's tables
// have in common.
func specWords(s string) string {
	return strings.Join(strings.Fields(bracketGroup.ReplaceAllString(s, " ")), " ")
}

// verdictRow is one row of the table: an upstream spec, and the case
// README.md maps it to, with the case's verdict in netpolcheck's run (or
// the reason it is not reproduced).
type verdictRow struct {
	spec                upstreamSpec
	caseID, caseVerdict string
	notReproduced       string
}

// The agreement column of a row.
const (
	agree      = "yes"
	disagree   = "**no**"
	notCompare = "not compared"
)

func (r verdictRow) agreement() string {
	switch {
	case r.notReproduced != "" || r.spec.verdict == reports.Skipped:
		return notCompare
	case r.caseVerdict != reports.Passed && r.caseVerdict != reports.Failed && r.caseVerdict != "divergent":
		return notCompare // incomplete or skipped: netpolcheck has no verdict
	case (r.spec.verdict == reports.Passed) == (r.caseVerdict == reports.Passed):
		return agree
	}
	return disagree
}

// verdictRows matches every spec to the one (context, It) of mapping whose
// words end its name, and every (context, It) of mapping to one spec, and
// gives each the mapped case's verdict in run ("divergent" for a case that
// failed only where the API leaves the behaviour open). Rows are sorted by
// context and It.
func verdictRows(specs []upstreamSpec, mapping map[upstreamTest]readmeRow, run *reports.Run) ([]verdictRow, error) {
	cases := map[string]reports.Case{}
	for _, c := range run.Cases {
		cases[c.ID] = c
	}
	matchedBy := map[upstreamTest][]string{}
	var rows []verdictRow
	var problems []string
	for _, spec := range specs {
		words := specWords(spec.name)
		var matches []upstreamTest
		for u := range mapping {
			key := specWords(u.context + " " + u.it)
			if words == key || strings.HasSuffix(words, " "+key) {
				matches = append(matches, u)
			}
		}
		if len(matches) != 1 {
			problems = append(problems, fmt.Sprintf("upstream spec %q matches %d (context, It) of README.md, want 1: %q", spec.name, len(matches), matches))
			continue
		}
		spec.test = matches[0]
		matchedBy[spec.test] = append(matchedBy[spec.test], spec.name)
		row := verdictRow{spec: spec, caseID: mapping[spec.test].caseID, notReproduced: mapping[spec.test].reason}
		if row.caseID != "" {
			c, ok := cases[row.caseID]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("README.md maps upstream %q to %s, which the run %q does not have", spec.name, row.caseID, run.Name))
			case c.Divergent():
				row.caseVerdict = "divergent"
			default:
				row.caseVerdict = c.State
			}
		}
		rows = append(rows, row)
	}
	for u := range mapping {
		if n := len(matchedBy[u]); n != 1 {
			problems = append(problems, fmt.Sprintf("README.md's %q in context %q matches %d upstream specs, want 1: %q", u.it, u.context, n, matchedBy[u]))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("upstream specs and README.md's mapping disagree:\n  %s", strings.Join(problems, "\n  "))
	}
	slices.SortFunc(rows, func(a, b verdictRow) int {
		return strings.Compare(a.spec.test.context+"\x00"+a.spec.test.it, b.spec.test.context+"\x00"+b.spec.test.it)
	})
	return rows, nil
}

// renderVerdicts renders the table of one CNI, with the counts above it.
func renderVerdicts(cni, junitName, resultsName string, upstream upstreamRun, run *reports.Run, rows []verdictRow) string {
	verdicts, agreements := map[string]int{}, map[string]int{}
	for _, r := range rows {
		verdicts[r.spec.verdict]++
		agreements[r.agreement()]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Upstream's netpol e2e beside netpolcheck: %s\n\n", cni)
	fmt.Fprintf(&b, "Rendered by `TestUpstreamVerdicts` (suites/conformance) from [%s](%s) (upstream's e2e, started %s UTC), "+
		"[%s](%s) (netpolcheck's run, started %s) and the mapping of upstream's tests to cases in suites/conformance/README.md. "+
		"`%s=1 go test ./suites/conformance -run TestUpstreamVerdicts` rewrites it.\n\n",
		junitName, junitName, upstream.started, resultsName, resultsName, run.StartedAt.UTC().Format("2006-01-02 15:04 UTC"), updateVerdictsEnv)
	fmt.Fprintf(&b, "%d upstream specs: %d passed, %d failed, %d skipped. Beside netpolcheck's verdict on the mapped case: "+
		"%d agree, %d disagree (each explained in [README.md](README.md), %q), %d not compared "+
		"(upstream skipped the spec, netpolcheck has no verdict, or no case reproduces it).\n\n",
		len(rows), verdicts[reports.Passed], verdicts[reports.Failed], verdicts[reports.Skipped],
		agreements[agree], agreements[disagree], strings.TrimPrefix(explanationsSection, "## "), agreements[notCompare])
	b.WriteString("| upstream context | upstream `It` | upstream | netpolcheck case | netpolcheck | agree? |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		upstreamVerdict := r.spec.verdict
		if r.spec.reason != "" {
			upstreamVerdict += ": " + r.spec.reason
		}
		theCase, caseVerdict := "`"+r.caseID+"`", r.caseVerdict
		if r.notReproduced != "" {
			theCase, caseVerdict = "not reproduced", "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", tableCell(r.spec.test.context), tableCell(r.spec.test.it),
			tableCell(upstreamVerdict), theCase, caseVerdict, r.agreement())
	}
	return b.String()
}

// tableCell escapes the pipes of a Markdown table cell.
func tableCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// markdownSection returns the text under heading up to the next heading
// of the same or a higher level ("" when there is no such heading).
func markdownSection(doc, heading string) string {
	level := heading[:strings.IndexByte(heading, ' ')+1]
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if in && strings.HasPrefix(line, "#") {
			hashes, _, _ := strings.Cut(line, " ")
			if len(hashes) < len(level) {
				break
			}
		}
		if line == heading {
			in = true
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// lineDiff lists the lines of a and b that a longest common subsequence of
// their lines leaves out, "-" for a's and "+" for b's, in order; "" when a
// and b are equal.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the length of a longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "-%s\n", x[i])
			i++
		default:
			fmt.Fprintf(&out, "+%s\n", y[j])
			j++
		}
	}
	return out.String()
}

// handMadeUpstreamJUnit is shaped as Ginkgo writes e2e.test's report: setup
// nodes, specs of other SIGs, feature tags in the text and the labels
// group after it, specs skipped by the run's --skip and by the spec itself.
const handMadeUpstreamJUnit = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="8" disabled="0" errors="0" failures="1" time="12.5">
  <testsuite name="Kubernetes e2e suite" package="/e2e" tests="8" skipped="3" failures="1" time="12.5" timestamp="2026-12-02T15:50:01">
    <properties>
      <property name="SuiteSucceeded" value="false"></property>
      <property name="FocusStrings" value="\[sig-network\] Netpol"></property>
      <property name="SkipStrings" value="\[Feature:SCTPConnectivity\]"></property>
    </properties>
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should support a &#39;default-deny-ingress&#39; policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" classname="Kubernetes e2e suite" status="passed" time="3"></testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should enforce updated policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" classname="Kubernetes e2e suite" status="failed" time="4">
      <failure message="Had 2 wrong results in reachability matrix&#xA;expected ... observed" type="failed">[FAILED] ...</failure>
    </testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should allow egress access on one named port [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped - the plugin does not support named ports"></skipped>
    </testcase>
    <testcase name="[It] [sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP should support a &#39;default-deny-ingress&#39; policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, Feature:SCTPConnectivity, sig-network]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-network] Netpol [LinuxOnly] NetworkPolicy between server and client using UDP should support a &#39;default-deny-ingress&#39; policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" classname="Kubernetes e2e suite" status="passed" time="2"></testcase>
    <testcase name="[It] [sig-network] Netpol API should support creating NetworkPolicy API operations" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>
`

func handMadeMapping() map[upstreamTest]readmeRow {
	return map[upstreamTest]readmeRow{
		{upstreamTCP, "should support a 'default-deny-ingress' policy"}:        {caseID: "conformance/default-deny-ingress"},
		{upstreamTCP, "should enforce updated policy"}:                         {caseID: "conformance/policy-update"},
		{upstreamTCP, "should allow egress access on one named port"}:          {caseID: "conformance/egress-named-port"},
		{upstreamSCTP, "should support a 'default-deny-ingress' policy"}:       {caseID: "conformance/sctp-default-deny-ingress"},
		{upstreamUDP, "should support a 'default-deny-ingress' policy"}:        {caseID: "conformance/udp-default-deny-ingress"},
		{"Netpol API", "should support creating NetworkPolicy API operations"}: {reason: "API machinery"},
	}
}

func handMadeRun() *reports.Run {
	divergent := reports.Case{ID: "conformance/udp-default-deny-ingress", State: reports.Failed,
		Labels: []string{reports.LabelImplementationDefined},
		Steps:  []reports.Step{{Wrong: 2, ImplementationDefinedWrong: 2}}}
	return &reports.Run{Name: "kube-router", Cases: []reports.Case{
		{ID: "conformance/default-deny-ingress", State: reports.Failed},
		{ID: "conformance/policy-update", State: reports.Failed},
		{ID: "conformance/egress-named-port", State: reports.Failed},
		{ID: "conformance/sctp-default-deny-ingress", State: reports.Passed},
		divergent,
	}}
}

func TestUpstreamVerdictRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), upstreamJUnit)
	if err := os.WriteFile(path, []byte(handMadeUpstreamJUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	upstream, err := readUpstreamRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if upstream.started != "2026-12-02T15:50:01" || len(upstream.specs) != 6 {
		t.Fatalf("read started %q and %d specs, want the suite's timestamp and the 6 netpol specs", upstream.started, len(upstream.specs))
	}
	rows, err := verdictRows(upstream.specs, handMadeMapping(), handMadeRun())
	if err != nil {
		t.Fatal(err)
	}
	got := renderVerdicts("kube-router", upstreamJUnit, "results.json", upstream, handMadeRun(), rows)
	for _, want := range []string{
		"6 upstream specs: 3 passed, 1 failed, 2 skipped. Beside netpolcheck's verdict on the mapped case: 1 agree, 2 disagree",
		"3 not compared",
		"| Netpol API | should support creating NetworkPolicy API operations | passed | not reproduced | — | not compared |\n" +
			"| NetworkPolicy between server and client | should allow egress access on one named port | skipped: the plugin does not support named ports | `conformance/egress-named-port` | failed | not compared |\n" +
			"| NetworkPolicy between server and client | should enforce updated policy | failed: Had 2 wrong results in reachability matrix | `conformance/policy-update` | failed | yes |\n" +
			"| NetworkPolicy between server and client | should support a 'default-deny-ingress' policy | passed | `conformance/default-deny-ingress` | failed | **no** |\n" +
			"| NetworkPolicy between server and client using SCTP | should support a 'default-deny-ingress' policy | skipped: by the run's skip `\\[Feature:SCTPConnectivity\\]` | `conformance/sctp-default-deny-ingress` | passed | not compared |\n" +
			"| NetworkPolicy between server and client using UDP | should support a 'default-deny-ingress' policy | passed | `conformance/udp-default-deny-ingress` | divergent | **no** |\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks\n%s\nit is:\n%s", want, got)
		}
	}

	readme := "# kube-router\n\n" + explanationsSection + "\n\n`conformance/default-deny-ingress`: upstream probes less.\n\n" +
		"## Another section\n\n`conformance/udp-default-deny-ingress` is named here only.\n"
	var ids []string
	for _, r := range unexplained(rows, readme) {
		ids = append(ids, r.caseID)
	}
	if !slices.Equal(ids, []string{"conformance/udp-default-deny-ingress"}) {
		t.Errorf("unexplained disagreements: %q, want only the one named outside the section", ids)
	}
}

func TestUpstreamVerdictRowsRejectUnmatched(t *testing.T) {
	path := filepath.Join(t.TempDir(), upstreamJUnit)
	if err := os.WriteFile(path, []byte(handMadeUpstreamJUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	upstream, err := readUpstreamRun(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(map[upstreamTest]readmeRow, *reports.Run)
		want   string
	}{
		{"a spec no row maps", func(m map[upstreamTest]readmeRow, _ *reports.Run) {
			delete(m, upstreamTest{upstreamTCP, "should enforce updated policy"})
		}, `should enforce updated policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" matches 0 (context, It)`},
		{"a row no spec matches", func(m map[upstreamTest]readmeRow, _ *reports.Run) {
			m[upstreamTest{upstreamUDP, "should enforce policy based on Ports"}] = readmeRow{caseID: "conformance/udp-ports"}
		}, `"should enforce policy based on Ports" in context "NetworkPolicy between server and client using UDP" matches 0 upstream specs`},
		{"a spec two rows match", func(m map[upstreamTest]readmeRow, _ *reports.Run) {
			m[upstreamTest{"client", "should enforce updated policy"}] = readmeRow{caseID: "conformance/policy-update"}
		}, `should enforce updated policy [Feature:NetworkPolicy] [Feature:NetworkPolicy, sig-network]" matches 2 (context, It)`},
		{"a mapped case the run lacks", func(_ map[upstreamTest]readmeRow, run *reports.Run) {
			run.Cases = run.Cases[1:]
		}, `to conformance/default-deny-ingress, which the run "kube-router" does not have`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mapping, run := handMadeMapping(), handMadeRun()
			tc.change(mapping, run)
			if _, err := verdictRows(upstream.specs, mapping, run); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant one containing %s", err, tc.want)
			}
		})
	}
}

func TestLineDiff(t *testing.T) {
	if d := lineDiff("a\nb\nc\n", "a\nb\nc\n"); d != "" {
		t.Errorf("equal texts: diff %q", d)
	}
	if d, want := lineDiff("a\nb\nc\n", "a\nx\nc\nd\n"), "-b\n+x\n+d\n"; d != want {
		t.Errorf("diff %q, want %q", d, want)
	}
}
