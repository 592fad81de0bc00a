package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Summary renders one run for a CI log or job summary: the totals (with the
// cells not probed), pass counts per suite and per label, how long cells
// took to agree with the expectation, the failing cases and the incomplete
// ones.
func Summary(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# netpolcheck: %s", cellText(r.Name))
	if r.CNI != "" || r.Provider != "" {
		fmt.Fprintf(&b, " (CNI %s on %s)", cellText(r.CNI), cellText(r.Provider))
	}
	b.WriteString("\n\n")
	total := tally(r.Cases)
	fmt.Fprintf(&b, "%d cases: %d passed, %d failed, %d divergent, %d incomplete, %d skipped", total.cases, total.passed, total.failed,
		total.divergent, total.incomplete, total.skipped)
	if r.DurationSeconds > 0 {
		fmt.Fprintf(&b, " in %s", formatSeconds(r.DurationSeconds))
	}
	fmt.Fprintf(&b, "; %d cells not probed.\n", total.notProbed)
	fmt.Fprintf(&b, "Time to enforce: %s.\n", EnforceTimesOf(r.Cases))
	b.WriteString("Divergent: a case failed only on cells whose verdict the API leaves to the implementation " +
		"(such as ipBlock matching pod IPs, or traffic between pods and nodes): this CNI made the other choice.\n" + incompleteNote + "\n" +
		enforceNote + "\n")

	bySuite := map[string][]Case{}
	byLabel := map[string][]Case{}
	for _, c := range r.Cases {
		bySuite[c.Suite] = append(bySuite[c.Suite], c)
		for _, l := range c.Labels {
			byLabel[l] = append(byLabel[l], c)
		}
	}
	b.WriteString("\n## By suite\n\n| suite | passed | failed | divergent | incomplete | skipped | cells not probed | steps | time to converge p50 | p99 | max |\n" +
		"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, suite := range sortedKeys(bySuite) {
		t := tally(bySuite[suite])
		conv, steps := convergenceOf(bySuite[suite])
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", cellText(suite), t.passed, t.failed, t.divergent,
			t.incomplete, t.skipped, t.notProbed, steps, millis(conv.P50), millis(conv.P99), millis(conv.Max))
	}
	b.WriteString("\nTime to converge: from the start of a step's probing to the start of the probing round in which a cell " +
		"first agreed with the expectation (0 when the first round agreed): p50 over the steps' medians, p99 over their " +
		"99th percentiles, and the maximum.\n")

	b.WriteString("\n## By label\n\n| label | passed | incomplete | of |\n|---|--:|--:|--:|\n")
	for _, label := range sortedKeys(byLabel) {
		t := tally(byLabel[label])
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", cellText(label), t.passed, t.incomplete, t.cases-t.skipped)
	}

	var failed []Case
	for _, c := range r.Cases {
		if c.State == Failed {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\n## Failed cases (%d)\n\n", len(failed))
		for _, c := range failed {
			fmt.Fprintf(&b, "- `%s` %s (%s): %s\n", c.ID, cellText(c.Name), c.FailureKind(), cellText(firstLine(c.Failure)))
		}
	}
	var incomplete []Case
	for _, c := range r.Cases {
		if c.State == Incomplete {
			incomplete = append(incomplete, c)
		}
	}
	if len(incomplete) > 0 {
		fmt.Fprintf(&b, "\n## Incomplete cases (%d)\n\n", len(incomplete))
		for _, c := range incomplete {
			fmt.Fprintf(&b, "- `%s` %s: %d cells not probed\n", c.ID, cellText(c.Name), c.NotProbed())
		}
	}
	return b.String()
}

// incompleteNote says what an incomplete case is, wherever cases are counted.
const incompleteNote = "Incomplete: a case agreed wherever it was probed, but none of its subject cells (those that show " +
	"what its policies do) could be probed, such as the external hosts of an ipBlock case on kind: it tested nothing of its subject."

type counts struct{ cases, passed, failed, divergent, incomplete, skipped, notProbed int }

func tally(cases []Case) counts {
	var t counts
	for _, c := range cases {
		t.cases++
		t.notProbed += c.NotProbed()
		switch {
		case c.State == Passed:
			t.passed++
		case c.State == Skipped:
			t.skipped++
		case c.State == Incomplete:
			t.incomplete++
		case c.Divergent():
			t.divergent++
		default:
			t.failed++
		}
	}
	return t
}

// convergenceOf aggregates the steps' convergence figures.
func convergenceOf(cases []Case) (Convergence, int) {
	var p50s, p99s []float64
	var out Convergence
	for _, c := range cases {
		for _, s := range c.Steps {
			p50s = append(p50s, s.Convergence.P50)
			p99s = append(p99s, s.Convergence.P99)
			out.Max = max(out.Max, s.Convergence.Max)
		}
	}
	if len(p50s) == 0 {
		return out, 0
	}
	sort.Float64s(p50s)
	sort.Float64s(p99s)
	out.P50 = p50s[len(p50s)/2]
	out.P99 = p99s[min(len(p99s)-1, len(p99s)*99/100)]
	return out, len(p50s)
}

func sortedKeys(m map[string][]Case) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func millis(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
