package matrix

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Grid symbols, as in the upstream netpol e2e: allowed, denied, and no cell
// (the destination does not serve the port). In a diff grid, a wrong cell is
// X and a cell never observed is "?".
const (
	symbolAllowed = "."
	symbolDenied  = "X"
	symbolAbsent  = "-"
	symbolMissing = "?"
)

// Grid renders one port/protocol of the table: rows are sources, columns are
// destinations, "." allowed, "X" denied, "-" not served. When the
// destinations' names would make the header wider than 100 characters,
// rows are numbered and columns carry the numbers.
func (t *Table) Grid(pp PortProtocol) string {
	p, ok := t.portIndex[pp]
	if !ok {
		return fmt.Sprintf("%s: not in the table\n", pp)
	}
	return t.grid(pp.String(), func(f, d int) string {
		bit := f*len(t.names) + d
		switch {
		case !t.present[p].has(bit):
			return symbolAbsent
		case t.allowed[p].has(bit):
			return symbolAllowed
		default:
			return symbolDenied
		}
	})
}

// String renders every port/protocol's grid.
func (t *Table) String() string {
	var b strings.Builder
	for i, pp := range t.ports {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t.Grid(pp))
	}
	return b.String()
}

// maxNamedColumns is the widest header, in characters, a grid writes with
// the destinations' names; wider, columns are numbered like the rows.
const maxNamedColumns = 100

func (t *Table) grid(title string, cell func(from, to int) string) string {
	width := 0
	for _, name := range t.names {
		width += len(name) + 1
	}
	numbered := width > maxNamedColumns
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 1, 1, 1, ' ', 0)
	fmt.Fprint(w, title)
	for i, name := range t.names {
		if numbered {
			name = fmt.Sprint(i + 1)
		}
		fmt.Fprint(w, "\t"+name)
	}
	fmt.Fprintln(w)
	for f, name := range t.names {
		if numbered {
			name = fmt.Sprintf("%d %s", f+1, name)
		}
		fmt.Fprint(w, name)
		for d := range t.names {
			fmt.Fprint(w, "\t"+cell(f, d))
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush() // writes to a strings.Builder cannot fail
	return b.String()
}

// Comparison renders, for every port/protocol where observed disagrees with
// expected, the expected grid, the observed grid and a diff grid ("." right,
// "X" wrong, "?" never observed). Observed cells that expected lacks are not
// shown. It returns "" when the tables agree.
func Comparison(expected, observed *Table) (string, error) {
	if err := sameShape(expected, observed); err != nil {
		return "", err
	}
	n := len(expected.names)
	var b strings.Builder
	for p, pp := range expected.ports {
		wrong := 0
		diff := expected.grid("diff "+pp.String(), func(f, d int) string {
			bit := f*n + d
			if !expected.present[p].has(bit) {
				return symbolAbsent
			}
			if !observed.present[p].has(bit) {
				wrong++
				return symbolMissing
			}
			if expected.allowed[p].has(bit) != observed.allowed[p].has(bit) {
				wrong++
				return symbolDenied
			}
			return symbolAllowed
		})
		if wrong == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d wrong cells\n", pp, wrong)
		b.WriteString("expected\n" + expected.Grid(pp))
		b.WriteString("observed\n" + observed.Grid(pp))
		b.WriteString(diff + "\n")
	}
	return b.String(), nil
}
