package reports_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/reports"
)

// TestComparisonInChromium opens the HTML comparison in headless Chromium at
// an incomplete case's anchor, then at a failing case's, and checks, in the
// DOM the page's script renders, that the case is expanded with its grids,
// unprobed and wrong cells marked, and that the summary counts incomplete
// cases and cells not probed. It keeps a screenshot in artifactsDir. In CI (CI=true) Chromium
// must be installed (.ci/run installs Debian's chromium); elsewhere the test
// is skipped without it.
func TestComparisonInChromium(t *testing.T) {
	local, kind := kindRuns(t)
	reference, none := fixtureRuns(t)
	page := mustHTML(t, reports.Compare([]*reports.Run{reference, none, local, kind}))
	// The kind run never probed the external host's cells (20 over its two
	// cases), so conformance/ipblock-external-egress is incomplete there.
	doc := openCaseInChromium(t, page, "conformance/ipblock-external-egress", filepath.Join(artifactsDir(t, "out/test/artifacts"), "comparison-fixture.png"))
	rows := findAll(findAll(doc, "table", "summary")[0], "tr", "")[1:]
	var got []string
	for _, row := range rows {
		got = append(got, text(findAll(row, "td", "")[0])+" "+text(findAll(row, "td", "incomplete")[0])+" "+text(findAll(row, "td", "cells-not-probed")[0]))
	}
	if want := "reference 0 0|none 0 0|local 0 0|kind 1 20"; strings.Join(got, "|") != want {
		t.Errorf("run, incomplete, cells not probed: %q, want %q", strings.Join(got, "|"), want)
	}
	incomplete := findAll(findAll(doc, "table", "cases")[0], "td", "o-incomplete")
	if len(incomplete) != 1 || text(incomplete[0]) != "INCOMPLETE 10 not probed" {
		t.Errorf("incomplete cells in the case table: %d", len(incomplete))
	}
	details := openDetails(t, doc, "conformance/ipblock-external-egress")
	if got := len(findAll(details, "td", "not-probed")); got == 0 {
		t.Errorf("the opened case shows no cell not probed:\n%s", renderNode(details))
	}
	if !strings.Contains(text(doc), "incomplete: none of the case's subject cells could be probed; not a pass") {
		t.Error("the legend does not say what incomplete means")
	}

	doc = openCaseInChromium(t, page, "recipes/seed001/1.10", "")
	details = openDetails(t, doc, "recipes/seed001/1.10")
	observed := findAll(details, "table", "observed")
	wrong := 0
	for _, g := range observed {
		for _, td := range findAll(g, "td", "wrong") {
			wrong++
			if s := text(td); s != "W✓" {
				t.Errorf("wrong cell shows %q, want W✓ (allowed, expected denied)", s)
			}
		}
	}
	if len(observed) != 2 || wrong != 10 {
		t.Errorf("opened case: %d observed grids with %d wrong cells, want 2 with 10", len(observed), wrong)
	}
	// 80/TCP and 81/UDP over x/a, x/b, y/a, ext: ext serves no 81/UDP, and
	// without enforcement every other cell is allowed.
	var kinds []int
	for _, kind := range []reports.CellKind{reports.CellAllowed, reports.CellDenied, reports.CellWrong, reports.CellNotProbed, reports.CellAbsent} {
		n := 0
		for _, g := range observed {
			n += len(findAll(g, "td", string(kind)))
		}
		kinds = append(kinds, n)
	}
	if want := []int{18, 0, 10, 0, 4}; !slices.Equal(kinds, want) {
		t.Errorf("observed cells allowed, denied, wrong, not probed, absent: %v, want %v", kinds, want)
	}
}

// TestComparisonInChromiumFiltersAndSteps checks the script's filters, set
// from the URL fragment a label table's link has, and a case's steps with a
// clean port and an unreadable table.
func TestComparisonInChromiumFiltersAndSteps(t *testing.T) {
	doc := openInChromium(t, mustHTML(t, threeRuns(t)), "filter?label=Recipe&state=failed&run=none", "#f-count", "")
	var shown []string
	for _, row := range findAll(doc, "tr", "case") {
		if !slices.ContainsFunc(row.Attr, func(a html.Attribute) bool { return a.Key == "hidden" }) {
			shown = append(shown, attr(row, "id"))
		}
	}
	if want := "recipes/seed001/1.2 recipes/seed001/1.10"; strings.Join(shown, " ") != want {
		t.Errorf("filtered rows %q, want %q", strings.Join(shown, " "), want)
	}
	for n := range doc.Descendants() {
		if attr(n, "id") == "f-count" && text(n) != "2 of 5 cases shown" {
			t.Errorf("the filter says %q, want 2 of 5 cases shown", text(n))
		}
	}

	run := &reports.Run{Name: "cni", Cases: []reports.Case{{
		ID: "generated/0001", Suite: "generated", State: reports.Failed, Failure: "boom <b>",
		Steps: []reports.Step{
			{Name: "one", Cells: 8, Wrong: 1, Table: &reports.Snapshot{Endpoints: []string{"a", "b"}, Ports: []string{"80/TCP", "81/TCP"},
				Expected: []string{"..X.", "...."}, Observed: []string{"....", "...."}}},
			{Name: "two", Table: &reports.Snapshot{Endpoints: []string{"a", "b"}, Ports: []string{"80/TCP"}, Expected: []string{"."}, Observed: []string{"."}}},
		},
	}}}
	doc = openCaseInChromium(t, mustHTML(t, reports.Compare([]*reports.Run{run})), "generated/0001", "")
	details := openDetails(t, doc, "generated/0001")
	body := text(details)
	for _, want := range []string{"every cell as expected on 81/TCP", "truth tables unreadable: snapshot port 80/TCP", "boom <b>", "step one: 1 of 8 cells wrong after 0 rounds"} {
		if !strings.Contains(body, want) {
			t.Errorf("details lack %q:\n%s", want, body)
		}
	}
	observed := findAll(details, "table", "observed")
	if len(observed) != 1 || len(findAll(observed[0], "td", "wrong")) != 1 || attr(findAll(observed[0], "td", "wrong")[0], "title") != "b → a: expected denied, observed allowed" {
		t.Errorf("%d observed grids, want one with one wrong cell b → a", len(observed))
	}
	if axes := findAll(observed[0], "th", "to"); len(axes) != 2 || text(axes[1]) != "b" || text(findAll(observed[0], "th", "from")[0]) != "a" {
		t.Error("the grid lacks its axis labels")
	}
}

// chromiumTab writes page to a file and opens a tab of headless Chromium
// (a throwaway profile, no network: every host name fails to resolve),
// closed when the test ends; it returns the tab's context and the page's URL.
func chromiumTab(t *testing.T, page string) (context.Context, string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not on PATH (%v): .ci/run installs Debian's chromium package", err)
		}
		t.Skipf("chromium is not on PATH (%v); CI=true makes this a failure", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "comparison.html")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1400, 2000),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	return ctx, "file://" + path
}

// TestComparisonInChromiumToggles clicks a case's ID: it closes the details
// its anchor opened, and opens them again.
func TestComparisonInChromiumToggles(t *testing.T) {
	ctx, url := chromiumTab(t, mustHTML(t, threeRuns(t)))
	link := chromedp.CSS(`tr.case[id="recipes/seed001/1.2"] a`)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"#recipes/seed001/1.2"), chromedp.WaitVisible(chromedp.CSS("tr.details")),
		chromedp.Click(link), chromedp.WaitNotPresent(chromedp.CSS("tr.details")),
		chromedp.Click(link), chromedp.WaitVisible(chromedp.CSS(`tr.details[data-case="recipes/seed001/1.2"]`))); err != nil {
		t.Fatalf("clicking the case's ID: %v", err)
	}
}

func mustHTML(t *testing.T, cmp *reports.Comparison) string {
	t.Helper()
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// artifactsDir is where the Chromium tests keep their screenshots:
// $NETPOLCHECK_ARTIFACTS, else def.
func artifactsDir(t *testing.T, def string) string {
	t.Helper()
	dir := os.Getenv("NETPOLCHECK_ARTIFACTS")
	if dir == "" {
		dir = def
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openDetails returns the details row the script rendered for a case, after
// checking it follows the case's row.
func openDetails(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	for _, tr := range findAll(doc, "tr", "details") {
		if attr(tr, "data-case") == id {
			if prev := tr.PrevSibling; prev == nil || attr(prev, "id") != id {
				t.Errorf("the details of %s do not follow its row", id)
			}
			return tr
		}
	}
	t.Fatalf("case %s is not expanded", id)
	return nil
}

func renderNode(n *html.Node) string {
	var b strings.Builder
	if err := html.Render(&b, n); err != nil {
		return err.Error()
	}
	return b.String()
}

// openCaseInChromium opens page at #id, waits for the script to expand the
// case, and returns the DOM; when shot is set it saves a screenshot of the
// window (1400x2000) there.
func openCaseInChromium(t *testing.T, page, id, shot string) *html.Node {
	t.Helper()
	return openInChromium(t, page, id, "tr.details", shot)
}

// openInChromium opens page at #fragment, waits until an element matching
// the CSS selector wait is visible, and returns the DOM.
func openInChromium(t *testing.T, page, fragment, wait, shot string) *html.Node {
	t.Helper()
	ctx, url := chromiumTab(t, page)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"#"+fragment), chromedp.WaitVisible(chromedp.CSS(wait))); err != nil {
		t.Fatalf("chromium at #%s: %v", fragment, err)
	}
	dom, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatalf("chromium at #%s: reading the DOM: %v", fragment, err)
	}
	if shot != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("chromium at #%s: screenshot: %v", fragment, err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of #%s: %s", fragment, shot)
	}
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parsing chromium's DOM: %v", err)
	}
	return doc
}
