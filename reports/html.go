package reports

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

//go:embed comparison.html.tmpl
var comparisonTemplate string

// MaxFailureBytes bounds the failure message the HTML page embeds per case
// and run: a failure message repeats the grids and explanations the page
// draws from the truth tables, and the full text of a run that enforces
// nothing is megabytes. results.json and the Markdown comparison keep it all.
const MaxFailureBytes = 1024

// HTML renders the comparison as one self-contained page, with no external
// resource. Without JavaScript it shows the run summary, the table per label,
// a list of the failing, divergent and incomplete cases of every run, and the
// case table with one badge per run; each case's row has its case ID as id.
// The cases' results (per run and step: the truth tables, run-length
// encoded, the first wrong cells with their explanations, the failure
// message cut at MaxFailureBytes) are embedded as JSON, and a small inline
// script renders a case's details when it is opened: by clicking its ID or
// by the URL's fragment (#CASE-ID). The details draw, per port, the expected
// and observed grids (sources as rows, destinations as columns) with wrong
// and unprobed cells marked by a letter as well as a colour. The script also
// filters the case table by label, outcome and run (#filter?label=L&state=S&run=R).
func (c *Comparison) HTML() (string, error) {
	tmpl, err := template.New("comparison").Funcs(template.FuncMap{
		"badge":   outcomeBadge,
		"seconds": formatSeconds,
		"enforce": enforcePercentiles,
		"join":    strings.Join,
		"filter":  filterFragment,
		"inc":     func(i int) int { return i + 1 },
		"anchor":  anchorURL,
	}).Parse(comparisonTemplate)
	if err != nil {
		return "", fmt.Errorf("parsing the HTML template: %w", err)
	}
	page := htmlPage{Comparison: c, Outcomes: htmlOutcomes(), Cells: cellLegend()}
	data := pageData{Cases: map[string][]runData{}, Badges: map[string]string{}}
	intern := interner{data: &data, endpoints: map[string]int{}, grids: map[string]int{}}
	for _, o := range page.Outcomes {
		data.Badges[o.Outcome] = o.Badge
	}
	for i := range c.Cases {
		row := &c.Cases[i]
		for r, res := range row.Results {
			if res.Outcome == Failed || res.Outcome == Divergent || res.Outcome == Incomplete {
				page.ensureLists(len(c.Runs))
				page.Lists[r].add(res.Outcome, row.ID)
			}
		}
		data.Cases[row.ID] = caseData(row, &intern)
	}
	for _, r := range c.Runs {
		data.Runs = append(data.Runs, r.Name)
	}
	encoded, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("encoding the cases of the HTML comparison: %w", err)
	}
	page.Data = template.JS(encoded)
	var b strings.Builder
	if err := tmpl.Execute(&b, page); err != nil {
		return "", fmt.Errorf("rendering the HTML comparison: %w", err)
	}
	return b.String(), nil
}

// htmlPage is what the template renders.
type htmlPage struct {
	*Comparison
	Outcomes []outcomeEntry
	Cells    []cellEntry
	// Lists holds, per run, its failing, divergent and incomplete cases.
	Lists []runLists
	// Data is the JSON the script renders cases' details from.
	Data template.JS
}

func (p *htmlPage) ensureLists(runs int) {
	if p.Lists != nil {
		return
	}
	p.Lists = make([]runLists, runs)
	for i, r := range p.Runs {
		p.Lists[i].Run = r.Name
		p.Lists[i].Anchor = "run-" + strconv.Itoa(i+1)
	}
}

// runLists names one run's cases that did not pass, by outcome.
type runLists struct {
	Run, Anchor                   string
	Failed, Divergent, Incomplete []string
}

func (l *runLists) add(outcome, id string) {
	switch outcome {
	case Failed:
		l.Failed = append(l.Failed, id)
	case Divergent:
		l.Divergent = append(l.Divergent, id)
	case Incomplete:
		l.Incomplete = append(l.Incomplete, id)
	}
}

// Failed returns the label's count of failed cases.
func (n LabelCount) Failed() int { return n.Total - n.Passed - n.Divergent - n.Incomplete }

// anchorURL is the link to a case's row: its ID as the URL fragment.
func anchorURL(id string) template.URL {
	return template.URL((&url.URL{Fragment: id}).String())
}

// filterFragment is the URL fragment that filters the case table.
func filterFragment(label, state, run string) string {
	q := []string{}
	for _, kv := range [][2]string{{"label", label}, {"state", state}, {"run", run}} {
		if kv[1] != "" {
			q = append(q, kv[0]+"="+template.URLQueryEscaper(kv[1]))
		}
	}
	return "#filter?" + strings.Join(q, "&")
}

// outcomeEntry is an outcome's badge and meaning.
type outcomeEntry struct {
	Outcome, Badge, Description string
}

func htmlOutcomes() []outcomeEntry {
	descriptions := []struct{ outcome, description string }{
		{Passed, "passed"},
		{Failed, "failed"},
		{Divergent, "divergent: implementation-defined behaviour differs; not a failure"},
		{Incomplete, "incomplete: none of the case's subject cells could be probed; not a pass"},
		{Skipped, "skipped"},
		{Missing, "missing: the run has no such case"},
	}
	out := make([]outcomeEntry, len(descriptions))
	for i, d := range descriptions {
		out[i] = outcomeEntry{Outcome: d.outcome, Badge: outcomeBadge(d.outcome), Description: d.description}
	}
	return out
}

// outcomeBadge is the plain-text badge of an outcome: it needs no emoji font.
func outcomeBadge(outcome string) string {
	switch outcome {
	case Passed:
		return "PASS"
	case Failed:
		return "FAIL"
	case Divergent:
		return "DIVERGENT"
	case Incomplete:
		return "INCOMPLETE"
	case Skipped:
		return "SKIP"
	default:
		return "MISSING"
	}
}

// cellEntry explains a kind of grid cell; the script draws the same symbols.
type cellEntry struct {
	Kind        CellKind
	Symbol      string
	Description string
}

func cellLegend() []cellEntry {
	return []cellEntry{
		{CellAllowed, "✓", "allowed, as expected"},
		{CellDenied, "×", "denied, as expected"},
		{CellWrong, "W✓ / W×", "wrong: observed (shown) differs from expected"},
		{CellNotProbed, "?", "expected but not probed"},
		{CellAbsent, "–", "no cell: the destination does not serve the port"},
	}
}

// pageData is the JSON embedded in the page, with short keys: it holds
// every case of every run.
type pageData struct {
	Runs []string `json:"runs"`
	// Badges maps an outcome to its badge.
	Badges map[string]string `json:"badges"`
	// Endpoints holds the distinct endpoint lists and Grids the distinct
	// grids, run-length encoded (see runLength); steps refer to them by
	// index, so that runs with the same expectations share them.
	Endpoints [][]string `json:"endpoints"`
	Grids     []string   `json:"grids"`
	// Cases maps a case ID to its result in every run, in run order.
	Cases map[string][]runData `json:"cases"`
}

type runData struct {
	Outcome string `json:"o"`
	// Failure is the failure message, cut at MaxFailureBytes.
	Failure string     `json:"f,omitempty"`
	Steps   []stepData `json:"s,omitempty"`
}

type stepData struct {
	Name   string `json:"n"`
	Cells  int    `json:"c"`
	Wrong  int    `json:"w"`
	Rounds int    `json:"r"`
	// Endpoints indexes pageData.Endpoints; -1 when the step has no table.
	Endpoints int      `json:"e"`
	Ports     []string `json:"p,omitempty"`
	// Expected and Observed index the snapshot's grids in pageData.Grids;
	// Observed is omitted when it equals Expected.
	Expected   []int  `json:"x,omitempty"`
	Observed   []int  `json:"b,omitempty"`
	TableError string `json:"t,omitempty"`
	// Mismatches holds, per recorded wrong cell, its line and explanation.
	Mismatches [][2]string `json:"m,omitempty"`
	// Services holds the lines of the checks through Services that disagree.
	Services []string `json:"v,omitempty"`
}

func caseData(row *CaseRow, intern *interner) []runData {
	out := make([]runData, len(row.Results))
	for i, res := range row.Results {
		out[i].Outcome = res.Outcome
		if res.Case == nil {
			continue
		}
		out[i].Failure = truncate(res.Case.Failure, MaxFailureBytes)
		for _, s := range res.Case.Steps {
			step := stepData{Name: s.Name, Cells: s.Cells, Wrong: s.Wrong, Rounds: s.Rounds, Endpoints: -1}
			for _, m := range s.Mismatches {
				step.Mismatches = append(step.Mismatches, [2]string{m.String(), m.Explanation})
			}
			for _, sc := range s.WrongServices() {
				step.Services = append(step.Services, sc.String())
			}
			if s.Table != nil {
				if err := s.Table.Validate(); err != nil {
					step.TableError = err.Error()
				} else {
					step.Endpoints = intern.endpointList(s.Table.Endpoints)
					step.Ports = s.Table.Ports
					step.Expected, step.Observed = intern.snapshotGrids(s.Table)
				}
			}
			out[i].Steps = append(out[i].Steps, step)
		}
	}
	return out
}

// interner adds endpoint lists and grids to the page's data once each.
type interner struct {
	data             *pageData
	endpoints, grids map[string]int
}

// endpointList returns the index of an endpoint list in data.Endpoints.
func (in *interner) endpointList(list []string) int {
	key := strings.Join(list, "\x00")
	i, ok := in.endpoints[key]
	if !ok {
		i = len(in.data.Endpoints)
		in.endpoints[key] = i
		in.data.Endpoints = append(in.data.Endpoints, list)
	}
	return i
}

// grid returns the index of a grid, run-length encoded, in data.Grids.
func (in *interner) grid(g string) int {
	i, ok := in.grids[g]
	if !ok {
		i = len(in.data.Grids)
		in.grids[g] = i
		in.data.Grids = append(in.data.Grids, runLength(g))
	}
	return i
}

// snapshotGrids returns the indexes of a snapshot's grids; observed is nil
// when every grid was observed as expected.
func (in *interner) snapshotGrids(s *Snapshot) (expected, observed []int) {
	same := true
	for p := range s.Ports {
		expected = append(expected, in.grid(s.Expected[p]))
		same = same && s.Expected[p] == s.Observed[p]
	}
	if same {
		return expected, nil
	}
	for p := range s.Ports {
		observed = append(observed, in.grid(s.Observed[p]))
	}
	return expected, observed
}

// runLength encodes a grid of symbols ('.', 'X', '-', '?') as each run's
// symbol followed by its length when longer than one: "...X" is ".3X".
func runLength(grid string) string {
	var b strings.Builder
	for i := 0; i < len(grid); {
		j := i + 1
		for j < len(grid) && grid[j] == grid[i] {
			j++
		}
		b.WriteByte(grid[i])
		if j-i > 1 {
			b.WriteString(strconv.Itoa(j - i))
		}
		i = j
	}
	return b.String()
}

// truncate cuts s to at most max bytes, on a rune boundary, saying how much
// it left out.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n… %d more bytes in results.json and the Markdown comparison", len(s)-cut)
}
