package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reports"
)

// writeRuns writes a "reference" results file where every case passes and
// a "none" results file (a cluster without enforcement) where the
// enforcement case fails and the implementation-defined case diverges, and
// a JUnit report of a third CNI.
func writeRuns(t *testing.T) (reference, none, junit string) {
	t.Helper()
	dir := t.TempDir()
	table := func(observed string) *reports.Snapshot {
		return &reports.Snapshot{Endpoints: []string{"x/a", "y/a"}, Ports: []string{"80/TCP"}, Expected: []string{"..X."}, Observed: []string{observed}}
	}
	cases := func(enforcing bool) []reports.Case {
		state, observed, wrong := reports.Passed, "..X.", 0
		var mismatches []reports.Mismatch
		if !enforcing {
			state, observed, wrong = reports.Failed, "....", 1
			mismatches = []reports.Mismatch{{From: "y/a", To: "x/a", Port: 80, Protocol: "TCP", Observed: "connected", Attempts: 3,
				Explanation: "y/a -> x/a 80/TCP: denied\n  denied by ingress: x/a is isolated for ingress by x/deny-all"}}
		}
		step := reports.Step{Name: "apply", Cells: 4, Wrong: wrong, Rounds: 3, Mismatches: mismatches, Table: table(observed)}
		// The ipBlock case's wrong cell depends on ipBlock matching pod IPs:
		// failing there is a divergence.
		implDefined := step
		implDefined.ImplementationDefinedWrong = step.Wrong
		implDefined.Mismatches = nil
		for _, m := range mismatches {
			m.ImplementationDefined = []string{"IPBlockPodIP"}
			implDefined.Mismatches = append(implDefined.Mismatches, m)
		}
		return []reports.Case{
			{ID: "recipes/seed004/5.7", Suite: "recipes", Name: "deny all ingress", Labels: []string{"Recipe", "Ingress"}, State: state, DurationSeconds: 2, Steps: []reports.Step{step}},
			{ID: "conformance/ipblock-pod-ip", Suite: "conformance", Name: "ipBlock matches pod IPs", Labels: []string{"IPBlock", reports.LabelImplementationDefined}, State: state, DurationSeconds: 3, Steps: []reports.Step{implDefined}},
			{ID: "conformance/allow-all", Suite: "conformance", Name: "allow all", Labels: []string{"Ingress"}, State: reports.Passed, DurationSeconds: 1},
		}
	}
	reference, none = filepath.Join(dir, "reference.json"), filepath.Join(dir, "none.json")
	for path, run := range map[string]*reports.Run{
		reference: {Name: "reference", CNI: "reference", Provider: "local", DurationSeconds: 42, Cases: cases(true)},
		none:      {CNI: "none", Provider: "local", DurationSeconds: 50, Cases: cases(false)},
	} {
		if err := run.Write(path); err != nil {
			t.Fatal(err)
		}
	}
	junit = filepath.Join(dir, "junit.xml")
	report := `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1" time="20">
  <testsuite name="netpolcheck" tests="2" failures="1" time="20">
    <testcase name="[It] Recipes recipes/seed004/5.7 deny all ingress [Recipe, Ingress]" classname="netpolcheck" status="failed" time="12">
      <failure message="1 of 4 cells wrong" type="failed">details</failure>
    </testcase>
    <testcase name="[It] Conformance conformance/allow-all allow all [Ingress]" classname="netpolcheck" status="passed" time="8"></testcase>
  </testsuite>
</testsuites>
`
	if err := os.WriteFile(junit, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	return reference, none, junit
}

func TestCompareMarkdownToStdout(t *testing.T) {
	reference, none, _ := writeRuns(t)
	code, out, errOut := runCLI(t, "compare", reference, none)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"| reference | reference | local | 3 | 0 | 0 | 0 | 0 | 0 | 0 | 42s |",
		"| none | none | local | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 50s |",
		"| `conformance/ipblock-pod-ip` ipBlock matches pod IPs | IPBlock, ImplementationDefined | ✅ | ⚠️ |",
		"| `recipes/seed004/5.7` deny all ingress | Recipe, Ingress | ✅ | ❌ |",
		"diff 80/TCP x/a y/a\nx/a         .   .\ny/a         X   .\n",
		"y/a -> x/a 80/TCP: expected denied, observed connected (3 attempts)\n    y/a -> x/a 80/TCP: denied\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCompareWritesFiles(t *testing.T) {
	reference, none, junit := writeRuns(t)
	dir := t.TempDir()
	md, page := filepath.Join(dir, "cmp.md"), filepath.Join(dir, "cmp.html")
	// Flags after positional arguments; the JUnit file is named by --name only.
	code, out, errOut := runCLI(t, "compare", "--name", "ref="+reference, reference, none, "--markdown", md, "--html", page, "--name", "cilium="+junit)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "" {
		t.Errorf("stdout should be empty when writing files:\n%s", out)
	}
	mdData, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| case | labels | ref | none | cilium |",
		"| ref | reference | local | 3 |",
		"| cilium |  |  | 1 | 1 | 0 | 0 | 0 | 1 | 0 | 20s |",
		"| `recipes/seed004/5.7` deny all ingress | Recipe, Ingress | ✅ | ❌ | ❌ |",
		"**cilium**: ❌ failed\n\n```text\n1 of 4 cells wrong\n```",
	} {
		if !strings.Contains(string(mdData), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, mdData)
		}
	}
	htmlData, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "<th>ref</th><th>none</th><th>cilium</th>",
		`<tr class="case" id="recipes/seed004/5.7"`, `<span class="badge b-failed">FAIL</span>`, `<script type="application/json" id="case-data">`} {
		if !strings.Contains(string(htmlData), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestCompareErrors(t *testing.T) {
	reference, none, _ := writeRuns(t)
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no results", nil, 2, "no results given"},
		{"missing file", []string{reference, missing}, 1, "missing.json: no such file"},
		{"not results", []string{reference, "compare_test.go"}, 1, "compare_test.go: neither a results.json file nor a JUnit XML report"},
		{"same name twice", []string{reference, reference}, 2, `are both named "reference": name them with --name NAME=FILE`},
		{"bad --name", []string{"--name", "oops", reference}, 2, `want NAME=FILE, not "oops"`},
		{"unknown flag", []string{"--output", "x", reference}, 2, "flag provided but not defined: -output"},
		{"unwritable output", []string{"--html", filepath.Join(missing, "x.html"), reference, none}, 1, "writing the HTML report"},
		{"negative limit", []string{"--markdown-max-bytes", "-1", reference}, 2, "--markdown-max-bytes -1: want 0 (no limit) or more"},
		{"help", []string{"-h"}, 0, "usage: netpolcheck compare [--markdown OUT.md]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"compare"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}
