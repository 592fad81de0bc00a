package reports_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/reports"
)

// TestComparisonInChromium loads the HTML comparison of a run without
// external hosts in headless Chromium and checks, in the DOM it renders,
// that the incomplete case and the counts of cells not probed are there.
// In CI (CI=true) Chromium must be installed (.ci/run installs Debian's
// chromium); elsewhere the test is skipped without it.
func TestComparisonInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not on PATH (%v): .ci/run installs Debian's chromium package", err)
		}
		t.Skipf("chromium is not on PATH (%v); CI=true makes this a failure", err)
	}
	local, kind := kindRuns(t)
	page, err := reports.Compare([]*reports.Run{local, kind}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "comparison.html")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runChromium(t, chromium, dir, "--dump-dom", "file://"+path)
	if shot := os.Getenv("NETPOLCHECK_SCREENSHOT"); shot != "" {
		runChromium(t, chromium, dir, "--screenshot="+shot, "--window-size=1400,1000", "file://"+path)
		t.Logf("screenshot: %s", shot)
	}
	doc, err := html.Parse(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("parsing chromium's DOM: %v", err)
	}
	summary := findAll(doc, "table", "summary")
	if len(summary) != 1 {
		t.Fatalf("%d run tables in chromium's DOM:\n%s", len(summary), out)
	}
	rows := findAll(summary[0], "tr", "")[1:]
	var got []string
	for _, row := range rows {
		got = append(got, text(findAll(row, "td", "")[0])+" "+text(findAll(row, "td", "incomplete")[0])+" "+text(findAll(row, "td", "cells-not-probed")[0]))
	}
	if want := "local 0 0|kind 1 20"; strings.Join(got, "|") != want {
		t.Errorf("run, incomplete, cells not probed: %q, want %q", strings.Join(got, "|"), want)
	}
	cases := findAll(doc, "table", "cases")[0]
	incomplete := findAll(cases, "td", "o-incomplete")
	if len(incomplete) != 1 || !strings.HasPrefix(text(incomplete[0]), "❔") || attr(incomplete[0], "title") != "incomplete" {
		t.Errorf("incomplete cells in the case table: %d", len(incomplete))
	}
	var counts []string
	for _, span := range findAll(cases, "span", "not-probed-count") {
		counts = append(counts, text(span))
	}
	if want := "10 not probed|10 not probed"; strings.Join(counts, "|") != want {
		t.Errorf("cells not probed per case: %q, want %q", strings.Join(counts, "|"), want)
	}
	if !strings.Contains(text(doc), "❔ incomplete (none of the case's subject cells could be probed: not a pass)") {
		t.Error("the legend does not say what incomplete means")
	}
}

// runChromium runs headless Chromium on a local page with a throwaway
// profile, no network (every host name fails to resolve) and no background
// services, and returns its standard output.
func runChromium(t *testing.T, chromium, dir string, args ...string) []byte {
	t.Helper()
	profile, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
		"--host-resolver-rules=MAP * ~NOTFOUND"}
	cmd := exec.CommandContext(ctx, chromium, append(flags, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
