package reports

import (
	"fmt"
	"strings"
	"time"
)

// outcomeSymbol returns the symbol of an outcome in the case tables.
func outcomeSymbol(outcome string) string {
	switch outcome {
	case Passed:
		return "✅"
	case Failed:
		return "❌"
	case Divergent:
		return "⚠️"
	case Incomplete:
		return "❔"
	case Skipped:
		return "⏭️"
	default:
		return "—"
	}
}

const outcomeLegend = "✅ passed · ❌ failed · ⚠️ divergent (implementation-defined behaviour differs; not a failure) · " +
	"❔ incomplete (none of the case's subject cells could be probed: not a pass) · ⏭️ skipped · — missing; " +
	"\"n not probed\" counts a case's cells that were not probed (they involve an endpoint the provider cannot reach)"

// Markdown renders the comparison: a summary per run, a table per label, a
// table of every case with one symbol per run, then the details of every
// case that failed or diverged somewhere (diff grids and the explanation of
// each wrong cell), each folded in a <details> block.
func (c *Comparison) Markdown() string { return c.MarkdownWithin(0) }

// MarkdownWithin renders the comparison as Markdown does, in at most
// maxBytes bytes (no limit when maxBytes <= 0): the run summary and the
// label table always; then the case table and the details of failing cases
// while they fit, each cut short by a line that says how many rows or cases
// were left out and where to find them (the HTML report has everything).
func (c *Comparison) MarkdownWithin(maxBytes int) string {
	w := budgetWriter{max: maxBytes}
	w.write(c.markdownHead())
	w.writeRows(fmt.Sprintf("\n## Cases (%d)\n\n", len(c.Cases))+c.tableHeader("case", "labels"), c.caseRows(), "case rows")
	failures := c.failureDetails()
	if len(failures) > 0 {
		w.writeRows(fmt.Sprintf("\n## Failures and divergences (%d cases)\n", len(failures)), failures, "failing or divergent cases")
	}
	return w.b.String()
}

// budgetWriter writes Markdown up to a size limit. Once a section is cut
// short, every later section is reduced to a line saying what it left out.
type budgetWriter struct {
	b   strings.Builder
	max int
	cut bool
}

func (w *budgetWriter) write(s string) { w.b.WriteString(s) }

// omissionReserve is room kept for the lines that say what was left out
// (one per section at most).
const omissionReserve = 400

func (w *budgetWriter) fits(s string) bool {
	return w.max <= 0 || w.b.Len()+len(s)+omissionReserve <= w.max
}

// writeRows writes head and then rows in order while they fit, then a line
// that says how many were left out.
func (w *budgetWriter) writeRows(head string, rows []string, what string) {
	if w.cut || !w.fits(head) {
		w.omit(len(rows), what)
		return
	}
	w.write(head)
	for i, row := range rows {
		if !w.fits(row) {
			w.omit(len(rows)-i, what)
			return
		}
		w.write(row)
	}
}

func (w *budgetWriter) omit(n int, what string) {
	w.cut = true
	fmt.Fprintf(&w.b, "\n_%d %s left out to keep this report under %d bytes: the HTML report shows them all._\n", n, what, w.max)
}

// markdownHead renders the run summary and the label table.
func (c *Comparison) markdownHead() string {
	var b strings.Builder
	b.WriteString("# NetworkPolicy comparison\n\n")
	b.WriteString("| run | CNI | provider | passed | failed | divergent | incomplete | skipped | missing | cells not probed | time | time to enforce p50 / p90 / p99 |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range c.Runs {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", cellText(r.Name), cellText(r.CNI), cellText(r.Provider),
			r.Passed, r.Failed, r.Divergent, r.Incomplete, r.Skipped, r.Missing, r.NotProbed, formatSeconds(r.DurationSeconds),
			enforcePercentiles(r.TimeToEnforce))
	}
	b.WriteString("\n" + outcomeLegend + "\n\n" + enforceNote + "\n")

	if len(c.Labels) > 0 {
		b.WriteString("\n## By label\n\nPassed of the cases that ran; ⚠️ counts divergences, ❔ incomplete cases.\n\n")
		b.WriteString(c.tableHeader("label"))
		for _, l := range c.Labels {
			fmt.Fprintf(&b, "| %s |", cellText(l.Label))
			for _, n := range l.Runs {
				fmt.Fprintf(&b, " %s |", n)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// caseRows renders one table row per case, with one symbol per run.
func (c *Comparison) caseRows() []string {
	rows := make([]string, len(c.Cases))
	for i, row := range c.Cases {
		var b strings.Builder
		fmt.Fprintf(&b, "| %s %s | %s |", inlineCode(strings.ReplaceAll(row.ID, "|", `\|`)), cellText(row.Name), cellText(strings.Join(row.Labels, ", ")))
		for _, res := range row.Results {
			fmt.Fprintf(&b, " %s%s |", outcomeSymbol(res.Outcome), notProbedNote(res.NotProbed()))
		}
		b.WriteString("\n")
		rows[i] = b.String()
	}
	return rows
}

// failureDetails renders a folded <details> block per case that failed or
// diverged in some run.
func (c *Comparison) failureDetails() []string {
	var out []string
	for i := range c.Cases {
		row := &c.Cases[i]
		if !row.Failing() {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\n<details><summary>%s %s</summary>\n\n", htmlText(row.ID), htmlText(row.Name))
		if len(row.Labels) > 0 {
			fmt.Fprintf(&b, "Labels: %s\n\n", htmlText(strings.Join(row.Labels, ", ")))
		}
		for j, res := range row.Results {
			if res.Outcome != Failed && res.Outcome != Divergent {
				continue
			}
			fmt.Fprintf(&b, "**%s**: %s %s\n\n", cellText(c.Runs[j].Name), outcomeSymbol(res.Outcome), res.Outcome)
			for _, d := range detailsOf(res.Case, true) {
				if d.Title != "" {
					b.WriteString(d.Title + "\n\n")
				}
				b.WriteString(codeBlock(d.Text))
			}
		}
		b.WriteString("</details>\n")
		out = append(out, b.String())
	}
	return out
}

// tableHeader returns the header and separator of a table whose first
// columns are named first and whose other columns are the runs.
func (c *Comparison) tableHeader(first ...string) string {
	var head, sep strings.Builder
	head.WriteString("|")
	sep.WriteString("|")
	for _, name := range first {
		fmt.Fprintf(&head, " %s |", name)
		sep.WriteString("---|")
	}
	for _, r := range c.Runs {
		fmt.Fprintf(&head, " %s |", cellText(r.Name))
		sep.WriteString(":-:|")
	}
	return head.String() + "\n" + sep.String() + "\n"
}

// notProbedNote renders a case's count of cells not probed after its
// outcome symbol, or nothing when every cell was probed.
func notProbedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" %d not probed", n)
}

// String renders the count as "passed/total", with divergences and
// incomplete cases.
func (n LabelCount) String() string {
	s := fmt.Sprintf("%d/%d", n.Passed, n.Total)
	if n.Divergent > 0 {
		s += fmt.Sprintf(" (⚠️ %d)", n.Divergent)
	}
	if n.Incomplete > 0 {
		s += fmt.Sprintf(" (❔ %d)", n.Incomplete)
	}
	return s
}

// String renders the mismatch on one line, as the runner's failure
// message does.
func (m Mismatch) String() string {
	s := fmt.Sprintf("%s -> %s %d/%s: expected %s, observed %s (%d attempts)", m.From, m.To, m.Port, m.Protocol, verdictWord(m.Expected), m.Observed, m.Attempts)
	if m.Detail != "" {
		s += "; " + m.Detail
	}
	if m.Flaky {
		s += "; FLAKY: it agreed with the expectation, then did not"
	}
	return s
}

func verdictWord(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// detail is one titled block of text about a failing case.
type detail struct {
	Title string
	Text  string
}

// detailsOf describes why a case failed: for every step with wrong or
// unprobed cells, its diff grids (when grids) and mismatches with their
// explanations; when no step says more, the failure message.
func detailsOf(c *Case, grids bool) []detail {
	var out []detail
	for _, s := range c.Steps {
		var text strings.Builder
		if grids && s.Table != nil {
			grids, err := s.Table.DiffGrids()
			if err != nil {
				grids = fmt.Sprintf("(truth tables unreadable: %v)\n", err)
			}
			text.WriteString(grids)
		}
		wrongServices := s.WrongServices()
		if text.Len() == 0 && s.Wrong == 0 && len(s.Mismatches) == 0 && len(wrongServices) == 0 {
			continue
		}
		for _, m := range s.Mismatches {
			text.WriteString(m.String() + "\n")
			if m.Explanation != "" {
				text.WriteString(indentLines(m.Explanation, "    "))
			}
		}
		for _, sc := range wrongServices {
			text.WriteString(sc.String() + "\n")
		}
		out = append(out, detail{
			Title: fmt.Sprintf("Step %s: %d of %d cells wrong after %s", inlineCode(s.Name), s.Wrong, s.Cells, plural(s.Rounds, "round")),
			Text:  text.String(),
		})
	}
	if len(out) == 0 && c.Failure != "" {
		out = append(out, detail{Text: c.Failure})
	}
	return out
}

// WrongCells describes why a case failed without its truth tables: for
// every step with wrong cells, a line that counts them, then each recorded
// wrong cell (the first MaxMismatches of the step) with the engine's
// explanation; when no step says more (pods never ready, a transport
// error), the failure message.
func WrongCells(c *Case) string {
	var b strings.Builder
	for _, d := range detailsOf(c, false) {
		if d.Title != "" {
			b.WriteString(d.Title + "\n")
		}
		b.WriteString(d.Text)
	}
	return b.String()
}

// plural renders "1 round", "2 rounds".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// codeBlock fences text with more backticks than it contains in a row.
func codeBlock(text string) string {
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	return fence + "text\n" + strings.TrimRight(text, "\n") + "\n" + fence + "\n\n"
}

// inlineCode renders s as inline code, with delimiters longer than any
// backtick run inside.
func inlineCode(s string) string {
	n := longestRun(s, '`')
	if n == 0 {
		return "`" + s + "`"
	}
	fence := strings.Repeat("`", n+1)
	return fence + " " + s + " " + fence
}

func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// cellText makes s safe inside a Markdown table cell: pipes escaped, HTML
// characters escaped, on one line.
func cellText(s string) string {
	s = strings.ReplaceAll(htmlText(s), "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// htmlText escapes the characters HTML gives meaning to, which Markdown
// renderers would otherwise take for markup.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// formatSeconds renders seconds as a Go duration, to the millisecond below
// a second and to the second above.
func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
