package reports_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/reports"
)

// embeddedRun mirrors the page's JSON for one case in one run.
type embeddedRun struct {
	Outcome string `json:"o"`
	Failure string `json:"f"`
	Steps   []struct {
		Name       string      `json:"n"`
		Cells      int         `json:"c"`
		Wrong      int         `json:"w"`
		Endpoints  int         `json:"e"`
		Ports      []string    `json:"p"`
		Expected   []int       `json:"x"`
		Observed   []int       `json:"b"`
		TableError string      `json:"t"`
		Mismatches [][2]string `json:"m"`
		Services   []string    `json:"v"`
	} `json:"s"`
}

type embeddedData struct {
	Runs      []string                 `json:"runs"`
	Endpoints [][]string               `json:"endpoints"`
	Grids     []string                 `json:"grids"`
	Cases     map[string][]embeddedRun `json:"cases"`
}

// pageData decodes the JSON the page's script renders details from.
func pageData(t *testing.T, doc *html.Node) embeddedData {
	t.Helper()
	for _, s := range findAll(doc, "script", "") {
		if attr(s, "id") != "case-data" {
			continue
		}
		var d embeddedData
		if err := json.Unmarshal([]byte(text(s)), &d); err != nil {
			t.Fatalf("the page's case data: %v", err)
		}
		return d
	}
	t.Fatal("the page embeds no case data")
	return embeddedData{}
}

// expandRuns decodes a run-length encoded grid, independently of the page's
// script: a symbol, then its count when above one.
func expandRuns(t *testing.T, rle string) string {
	t.Helper()
	var b strings.Builder
	for _, m := range regexp.MustCompile(`(\D)(\d*)`).FindAllStringSubmatch(rle, -1) {
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		b.WriteString(strings.Repeat(m[1], n))
	}
	return b.String()
}

func parsePage(t *testing.T, page string) *html.Node {
	t.Helper()
	checkWellFormed(t, page)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestHTML checks what the page shows without JavaScript (the summary, the
// lists of cases that did not pass, the case table) and the data its script
// renders the details from.
func TestHTML(t *testing.T) {
	cmp := threeRuns(t)
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	doc := parsePage(t, page)
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, " src=") {
		t.Error("page loads external resources")
	}
	if strings.ContainsAny(page, "✅❌⚠❔⏭") {
		t.Error("page uses emoji, which need an emoji font")
	}

	summary := findAll(doc, "table", "summary")
	if len(summary) != 1 {
		t.Fatalf("%d summary tables", len(summary))
	}
	var counts []string
	for _, row := range findAll(summary[0], "tr", "")[1:] {
		cells := findAll(row, "td", "")
		var c []string
		for _, i := range []int{0, 4, 5, 6, 7, 8} {
			c = append(c, text(cells[i]))
		}
		counts = append(counts, strings.Join(c, " "))
	}
	if want := "reference 5 0 0 0 0|none 0 2 1 1 1|partial 0 1 0 0 4"; strings.Join(counts, "|") != want {
		t.Errorf("run, passed, failed, divergent, skipped, missing: %q, want %q", strings.Join(counts, "|"), want)
	}
	if links := findAll(findAll(summary[0], "td", "failed")[1], "a", ""); len(links) != 1 || attr(links[0], "href") != "#run-2" {
		t.Errorf("none's failed count does not link to its list of failed cases")
	}
	list := findAll(doc, "section", "run-list")
	if len(list) != 3 || attr(list[1], "id") != "run-2" {
		t.Fatalf("%d lists of cases that did not pass", len(list))
	}
	var hrefs []string
	for _, a := range findAll(list[1], "a", "") {
		hrefs = append(hrefs, attr(a, "href"))
	}
	if want := "#recipes/seed001/1.2 #recipes/seed001/1.10 #conformance/ipblock-pod-ip"; strings.Join(hrefs, " ") != want {
		t.Errorf("none's list links %q, want %q", strings.Join(hrefs, " "), want)
	}
	var labelLinks []string
	for _, a := range findAll(findAll(doc, "table", "labels")[0], "a", "") {
		labelLinks = append(labelLinks, attr(a, "href")+" "+text(a))
	}
	if want := "#filter?label=Conformance&state=divergent&run=none 1 divergent"; labelLinks[0] != want {
		t.Errorf("first label link %q, want %q", labelLinks[0], want)
	}

	cases := findAll(doc, "table", "cases")[0]
	if got := len(findAll(cases, "td", "o-failed")); got != 3 {
		t.Errorf("%d failed cells in the case table, want 3", got)
	}
	divergent := findAll(cases, "td", "o-divergent")
	if len(divergent) != 1 || text(divergent[0]) != "DIVERGENT" {
		t.Errorf("divergent cells in the case table: %d", len(divergent))
	}
	rows := findAll(cases, "tr", "case")
	if len(rows) != len(cmp.Cases) {
		t.Fatalf("%d case rows, want %d", len(rows), len(cmp.Cases))
	}
	for i, row := range rows {
		id := cmp.Cases[i].ID
		if attr(row, "id") != id || attr(findAll(row, "a", "")[0], "href") != "#"+id {
			t.Errorf("row %d: id %q links %q, want %s", i, attr(row, "id"), attr(findAll(row, "a", "")[0], "href"), id)
		}
	}
	if got := attr(rows[3], "data-outcomes") + " " + attr(rows[3], "data-labels"); got != "passed failed failed Recipe|Ingress" {
		t.Errorf("recipes/seed001/1.2 filters on %q", got)
	}

	data := pageData(t, doc)
	if strings.Join(data.Runs, " ") != "reference none partial" || len(data.Cases) != len(cmp.Cases) {
		t.Fatalf("data for runs %v and %d cases", data.Runs, len(data.Cases))
	}
	// every recorded grid round-trips, and Observed is left out when equal
	for _, row := range cmp.Cases {
		for r, res := range row.Results {
			got := data.Cases[row.ID][r]
			if got.Outcome != res.Outcome {
				t.Errorf("%s in %s: %s, want %s", row.ID, data.Runs[r], got.Outcome, res.Outcome)
			}
			if res.Case == nil {
				continue
			}
			for s, step := range res.Case.Steps {
				if step.Table == nil {
					continue
				}
				g := got.Steps[s]
				if strings.Join(data.Endpoints[g.Endpoints], " ") != strings.Join(step.Table.Endpoints, " ") {
					t.Errorf("%s step %s: endpoints %v", row.ID, step.Name, data.Endpoints[g.Endpoints])
				}
				for p := range step.Table.Ports {
					observed := g.Expected[p]
					if g.Observed != nil {
						observed = g.Observed[p]
					}
					if expandRuns(t, data.Grids[g.Expected[p]]) != step.Table.Expected[p] || expandRuns(t, data.Grids[observed]) != step.Table.Observed[p] {
						t.Errorf("%s in %s, step %s, port %s: grids do not round-trip", row.ID, data.Runs[r], step.Name, step.Table.Ports[p])
					}
				}
			}
		}
	}
	if data.Cases["recipes/seed001/1.2"][0].Steps[0].Observed != nil {
		t.Error("a passing step repeats its observed grids")
	}
	ipblock := data.Cases["conformance/ipblock-pod-ip"][1].Steps[0]
	if len(ipblock.Mismatches) == 0 || !strings.Contains(ipblock.Mismatches[0][1], "x/same-namespace-web ingress[0]: no peer matches") {
		t.Errorf("explanations missing from the divergent case: %v", ipblock.Mismatches)
	}
}

func TestHTMLFailureMessagesAndUnreadableTables(t *testing.T) {
	long := strings.Repeat("é", reports.MaxFailureBytes) // two bytes each
	run := &reports.Run{Name: "cni", Cases: []reports.Case{
		{ID: "generated/0001", Suite: "generated", State: reports.Failed, Failure: "boom <b></script>",
			Steps: []reports.Step{{Name: "one", Table: &reports.Snapshot{Endpoints: []string{"a", "b"}, Ports: []string{"80/TCP"}, Expected: []string{"."}, Observed: []string{"."}}}}},
		{ID: "generated/0002", Suite: "generated", State: reports.Failed, Failure: long},
	}}
	page, err := reports.Compare([]*reports.Run{run}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, "boom <b>") {
		t.Error("a failure message is not escaped in the page's data")
	}
	data := pageData(t, parsePage(t, page))
	one := data.Cases["generated/0001"][0]
	if one.Failure != "boom <b></script>" || !strings.HasPrefix(one.Steps[0].TableError, "snapshot port 80/TCP: grids of 1 and 1 symbols, want 4") {
		t.Errorf("generated/0001: failure %q, table error %q", one.Failure, one.Steps[0].TableError)
	}
	cut := data.Cases["generated/0002"][0].Failure
	if want := strings.Repeat("é", reports.MaxFailureBytes/2) + fmt.Sprintf("\n… %d more bytes in results.json and the Markdown comparison", len(long)/2); cut != want {
		t.Errorf("long failure cut to %q…", cut[len(cut)-80:])
	}
}

// fullSizeRuns synthesises two runs the size of make test's: 414 cases,
// some of two steps, over 12 endpoints and 8 ports; the reference run passes
// everything, the none run allows everything and fails 388 cases with 10
// explained mismatches per step and a failure message of about 20 kB, as
// the runner writes them.
func fullSizeRuns() (reference, none *reports.Run) {
	endpoints := make([]string, 12)
	for i := range endpoints {
		endpoints[i] = fmt.Sprintf("ns%d-525063/pod-%c", i/4, 'a'+rune(i%4))
	}
	ports := []string{"80/TCP", "81/TCP", "80/UDP", "81/UDP", "80/SCTP", "81/SCTP", "8080/TCP", "53/UDP"}
	reference, none = &reports.Run{Name: "reference", CNI: "reference"}, &reports.Run{Name: "none", CNI: "none"}
	for c := range 414 {
		id := fmt.Sprintf("generated/%04d", c)
		refCase := reports.Case{ID: id, Suite: "generated", Name: "case " + id, Labels: []string{"Generated", "Ingress"}, State: reports.Passed}
		noneCase := refCase
		for s := range 1 + c%4/3 {
			snap := reports.Snapshot{Endpoints: endpoints, Ports: ports}
			allowAll := reports.Snapshot{Endpoints: endpoints, Ports: ports}
			var mismatches []reports.Mismatch
			for p := range ports {
				var exp, obs strings.Builder
				for i := range len(endpoints) * len(endpoints) {
					switch {
					case p == 7 && i%12 > 8:
						exp.WriteByte('-')
						obs.WriteByte('-')
					case (i*7+c+s+p)%5 < 2:
						exp.WriteByte('X')
						obs.WriteByte('.')
						if len(mismatches) < reports.MaxMismatches {
							from, to := endpoints[i/12], endpoints[i%12]
							mismatches = append(mismatches, reports.Mismatch{From: from, To: to, Port: 80, Protocol: "TCP", Observed: "connected", Attempts: 13,
								Explanation: fmt.Sprintf("%s -> %s %s: denied\n  denied by ingress: %s is isolated for ingress by ns0/policy-%d and no rule allows it\n  egress at %s: not isolated\n  ingress at %s: denied; isolated by ns0/policy-%d\n    - ns0/policy-%d ingress[0]: no peer matches %s (10.244.1.%d)\n",
									from, to, ports[p], to, c, from, to, c, c, from, i)})
						}
					default:
						exp.WriteByte('.')
						obs.WriteByte('.')
					}
				}
				snap.Expected = append(snap.Expected, exp.String())
				snap.Observed = append(snap.Observed, exp.String())
				allowAll.Expected = append(allowAll.Expected, exp.String())
				allowAll.Observed = append(allowAll.Observed, obs.String())
			}
			name := fmt.Sprintf("step-%d", s)
			refCase.Steps = append(refCase.Steps, reports.Step{Name: name, Cells: 1100, Rounds: 1, Table: &snap})
			wrong := reports.Step{Name: name, Cells: 1100, Rounds: 13, Wrong: 440, Mismatches: mismatches, Table: &allowAll}
			if c < 26 {
				wrong = reports.Step{Name: name, Cells: 1100, Rounds: 1, Table: &snap}
			}
			noneCase.Steps = append(noneCase.Steps, wrong)
		}
		if c >= 26 {
			noneCase.State = reports.Failed
			noneCase.Failure = strings.Repeat("step \"step-0\": the cluster disagrees with the NetworkPolicy API: grids and explanations\n", 220)
		}
		reference.Cases = append(reference.Cases, refCase)
		none.Cases = append(none.Cases, noneCase)
	}
	return reference, none
}

// maxPageBytes is the most the page of two full runs may weigh.
const maxPageBytes = 5_000_000

func TestHTMLOfTwoFullRunsIsSmall(t *testing.T) {
	reference, none := fullSizeRuns()
	cmp := reports.Compare([]*reports.Run{reference, none})
	if cmp.Runs[1].Failed != 388 {
		t.Fatalf("none run: %d failed", cmp.Runs[1].Failed)
	}
	page, err := cmp.HTML()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HTML comparison of two runs of 414 cases: %d bytes (Markdown %d bytes)", len(page), len(cmp.Markdown()))
	if len(page) >= maxPageBytes {
		t.Errorf("the HTML comparison of two full runs is %d bytes, want under %d", len(page), maxPageBytes)
	}
}
