package reports

import (
	"slices"
	"strings"
)

// Outcomes of a case in a comparison, besides the case states Passed,
// Failed, Incomplete and Skipped.
const (
	// Divergent: an ImplementationDefined case failed; the CNI differs where
	// the API leaves the behaviour open.
	Divergent = "divergent"
	// Missing: the run has no such case.
	Missing = "missing"
)

// Comparison sets runs side by side: one row per case, one column per run.
type Comparison struct {
	Runs   []RunSummary
	Labels []LabelSummary
	// Cases is the union of every run's cases, ordered by suite, then ID
	// (numbers within IDs compare as numbers).
	Cases []CaseRow
}

// RunSummary counts a run's outcomes over the comparison's cases.
type RunSummary struct {
	Name              string
	CNI               string
	Provider          string
	KubernetesVersion string
	Passed            int
	Failed            int
	Divergent         int
	Incomplete        int
	Skipped           int
	// Missing counts the cases of other runs that this run lacks.
	Missing int
	// NotProbed counts the cells not probed over the run's cases.
	NotProbed int
	// DurationSeconds is the run's duration, or the sum of its cases'
	// durations when the run does not record one.
	DurationSeconds float64
	// TimeToEnforce summarises the run's times to enforce; nil when none
	// was recorded.
	TimeToEnforce *EnforceTimes
}

// LabelSummary counts, for one label, the outcomes of the cases carrying it.
type LabelSummary struct {
	Label string
	// Runs holds one count per run, in run order.
	Runs []LabelCount
}

// LabelCount counts the cases of one label in one run.
type LabelCount struct {
	Passed     int
	Divergent  int
	Incomplete int
	// Total counts the cases that ran: passed, failed, divergent or
	// incomplete.
	Total int
}

// CaseRow is one case across every run.
type CaseRow struct {
	ID    string
	Suite string
	Name  string
	// Labels is the union of the case's labels over the runs.
	Labels []string
	// ImplementationDefined is set when any run labels the case so; its
	// failures are then divergences.
	ImplementationDefined bool
	// Results holds one result per run, in run order.
	Results []CaseResult
}

// CaseResult is a case's outcome in one run.
type CaseResult struct {
	// Outcome is Passed, Failed, Divergent, Incomplete, Skipped or Missing.
	Outcome string
	// Case is the run's case; nil when Missing.
	Case *Case
}

// NotProbed counts the case's cells not probed in this run.
func (r CaseResult) NotProbed() int {
	if r.Case == nil {
		return 0
	}
	return r.Case.NotProbed()
}

// Failing reports whether the case failed or diverged in any run.
func (r *CaseRow) Failing() bool {
	return slices.ContainsFunc(r.Results, func(res CaseResult) bool {
		return res.Outcome == Failed || res.Outcome == Divergent
	})
}

// Compare sets the runs side by side. A case appearing twice in a run (same
// suite and ID) is taken from its first occurrence.
func Compare(runs []*Run) *Comparison {
	rows := map[string]*CaseRow{}
	for i, run := range runs {
		for j := range run.Cases {
			c := &run.Cases[j]
			key := c.Suite + "\x00" + c.ID
			row := rows[key]
			if row == nil {
				row = &CaseRow{ID: c.ID, Suite: c.Suite, Name: c.Name, Results: make([]CaseResult, len(runs))}
				rows[key] = row
			}
			if row.Results[i].Case != nil {
				continue
			}
			row.Results[i].Case = c
			for _, l := range c.Labels {
				if !slices.Contains(row.Labels, l) {
					row.Labels = append(row.Labels, l)
				}
			}
		}
	}
	cmp := &Comparison{}
	for _, row := range rows {
		row.ImplementationDefined = slices.Contains(row.Labels, LabelImplementationDefined)
		for i := range row.Results {
			row.Results[i].Outcome = outcome(row.Results[i].Case, row.ImplementationDefined)
		}
		cmp.Cases = append(cmp.Cases, *row)
	}
	slices.SortFunc(cmp.Cases, func(a, b CaseRow) int {
		if c := naturalCompare(a.Suite, b.Suite); c != 0 {
			return c
		}
		return naturalCompare(a.ID, b.ID)
	})
	cmp.Runs = summarizeRuns(runs, cmp.Cases)
	cmp.Labels = summarizeLabels(len(runs), cmp.Cases)
	return cmp
}

// outcome maps a case state to its outcome; a state other than passed or
// skipped is a failure.
func outcome(c *Case, implementationDefined bool) string {
	switch {
	case c == nil:
		return Missing
	case c.State == Passed || c.State == Skipped || c.State == Incomplete:
		return c.State
	case implementationDefined && c.OnlyImplementationDefinedMismatches():
		return Divergent
	default:
		return Failed
	}
}

func summarizeRuns(runs []*Run, rows []CaseRow) []RunSummary {
	summaries := make([]RunSummary, len(runs))
	for i, run := range runs {
		s := &summaries[i]
		*s = RunSummary{Name: run.Name, CNI: run.CNI, Provider: run.Provider, KubernetesVersion: run.KubernetesVersion, DurationSeconds: run.DurationSeconds,
			TimeToEnforce: EnforceTimesOf(run.Cases)}
		if s.DurationSeconds == 0 {
			for _, c := range run.Cases {
				s.DurationSeconds += c.DurationSeconds
			}
		}
		for _, row := range rows {
			s.NotProbed += row.Results[i].NotProbed()
			switch row.Results[i].Outcome {
			case Passed:
				s.Passed++
			case Failed:
				s.Failed++
			case Divergent:
				s.Divergent++
			case Incomplete:
				s.Incomplete++
			case Skipped:
				s.Skipped++
			case Missing:
				s.Missing++
			}
		}
	}
	return summaries
}

func summarizeLabels(runs int, rows []CaseRow) []LabelSummary {
	byLabel := map[string]*LabelSummary{}
	for _, row := range rows {
		for _, l := range row.Labels {
			ls := byLabel[l]
			if ls == nil {
				ls = &LabelSummary{Label: l, Runs: make([]LabelCount, runs)}
				byLabel[l] = ls
			}
			for i, res := range row.Results {
				count := &ls.Runs[i]
				switch res.Outcome {
				case Passed:
					count.Passed++
					count.Total++
				case Divergent:
					count.Divergent++
					count.Total++
				case Incomplete:
					count.Incomplete++
					count.Total++
				case Failed:
					count.Total++
				}
			}
		}
	}
	out := make([]LabelSummary, 0, len(byLabel))
	for _, ls := range byLabel {
		out = append(out, *ls)
	}
	slices.SortFunc(out, func(a, b LabelSummary) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// naturalCompare orders strings with runs of digits compared by value, so
// "5.7" sorts before "5.10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := da - db; c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitPrefix(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
