package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"strings"
)

//go:embed comparison.html.tmpl
var comparisonTemplate string

// HTML renders the comparison as one self-contained page (inline CSS, no
// script): the same tables as Markdown, with a small truth-table heat map
// (a PNG data URL of the case's last step) beside every case's result in
// every run, then, for every case that failed
// or diverged in some run, a folded section per case with, for each run
// where it failed, truth-table heat maps (one table per step and
// port/protocol with wrong or unprobed cells: allowed as expected, denied
// as expected, wrong, not probed, absent) and the mismatches with their
// explanations. Ports, steps and runs where every cell is as expected are
// summarised in a line instead, which keeps pages of hundreds of cases
// small.
func (c *Comparison) HTML() (string, error) {
	tmpl, err := template.New("comparison").Funcs(template.FuncMap{
		"symbol":  outcomeSymbol,
		"seconds": formatSeconds,
		"join":    strings.Join,
		"plural":  plural,
		"heatmap": heatMapURL,
	}).Parse(comparisonTemplate)
	if err != nil {
		return "", fmt.Errorf("parsing the HTML template: %w", err)
	}
	page := htmlPage{Comparison: c, OutcomeLegend: outcomeLegend, Legend: heatMapLegend(), Anchors: map[string]string{}}
	for i := range c.Cases {
		row := &c.Cases[i]
		if !row.Failing() {
			continue
		}
		anchor := fmt.Sprintf("case-%d", i+1)
		page.Anchors[row.Suite+"\x00"+row.ID] = anchor
		page.Failing = append(page.Failing, htmlCase{Anchor: anchor, Row: row, Runs: runDetails(c.Runs, row)})
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, page); err != nil {
		return "", fmt.Errorf("rendering the HTML comparison: %w", err)
	}
	return b.String(), nil
}

// htmlPage is what the template renders.
type htmlPage struct {
	*Comparison
	OutcomeLegend string
	Legend        []legendEntry
	Failing       []htmlCase
	// Anchors maps a failing case's suite and ID to its section's id.
	Anchors map[string]string
}

// Anchor returns the id of a case's details section, or "" when it has none.
func (p htmlPage) Anchor(row CaseRow) string { return p.Anchors[row.Suite+"\x00"+row.ID] }

type legendEntry struct {
	Kind        CellKind
	Symbol      string
	Description string
}

func heatMapLegend() []legendEntry {
	return []legendEntry{
		{CellAllowed, ".", "allowed, as expected"},
		{CellDenied, "X", "denied, as expected"},
		{CellWrong, ". / X", "wrong: observed (shown) differs from expected"},
		{CellNotProbed, "?", "expected but not probed"},
		{CellAbsent, "-", "no cell: the destination does not serve the port"},
	}
}

type htmlCase struct {
	Anchor string
	Row    *CaseRow
	Runs   []htmlRun
}

// htmlRun is a failing case's result in one run.
type htmlRun struct {
	Run     string
	Outcome string
	Failure string
	Steps   []htmlStep
}

type htmlStep struct {
	Name   string
	Cells  int
	Wrong  int
	Rounds int
	// HeatMaps holds the ports with wrong or unprobed cells; CleanPorts
	// names the others.
	HeatMaps   []heatMap
	CleanPorts []string
	TableError string
	Mismatches []Mismatch
	// WrongServices are the step's checks through Services that disagree.
	WrongServices []ServiceCheck
}

// heatMap is one port/protocol of a step's truth table: rows are sources,
// columns destinations.
type heatMap struct {
	Port      string
	Endpoints []string
	Rows      []heatRow
}

type heatRow struct {
	From  string
	Cells []heatCell
}

type heatCell struct {
	Kind   CellKind
	Symbol string
	Title  string
}

func runDetails(runs []RunSummary, row *CaseRow) []htmlRun {
	out := make([]htmlRun, len(row.Results))
	for i, res := range row.Results {
		out[i] = htmlRun{Run: runs[i].Name, Outcome: res.Outcome}
		if res.Outcome != Failed && res.Outcome != Divergent {
			continue
		}
		out[i].Failure = res.Case.Failure
		for _, s := range res.Case.Steps {
			step := htmlStep{Name: s.Name, Cells: s.Cells, Wrong: s.Wrong, Rounds: s.Rounds, Mismatches: s.Mismatches,
				WrongServices: s.WrongServices()}
			if s.Table != nil {
				if err := s.Table.Validate(); err != nil {
					step.TableError = err.Error()
				} else {
					step.HeatMaps, step.CleanPorts = heatMaps(s.Table)
				}
			}
			out[i].Steps = append(out[i].Steps, step)
		}
	}
	return out
}

// heatMaps returns a heat map for every port with wrong or unprobed cells,
// and the names of the other ports. Only those cells carry a title.
func heatMaps(s *Snapshot) (maps []heatMap, clean []string) {
	for p, port := range s.Ports {
		hm := heatMap{Port: port, Endpoints: s.Endpoints, Rows: make([]heatRow, len(s.Endpoints))}
		problems := false
		for f, from := range s.Endpoints {
			cells := make([]heatCell, len(s.Endpoints))
			for d, to := range s.Endpoints {
				expected, observed := s.Cell(p, f, d)
				kind := s.Kind(p, f, d)
				cells[d] = heatCell{Kind: kind, Symbol: string(observed)}
				if kind == CellWrong || kind == CellNotProbed {
					problems = true
					cells[d].Title = fmt.Sprintf("%s -> %s: expected %s", from, to, verdictWord(expected == '.'))
				}
			}
			hm.Rows[f] = heatRow{From: from, Cells: cells}
		}
		if problems {
			maps = append(maps, hm)
		} else {
			clean = append(clean, port)
		}
	}
	return maps, clean
}
