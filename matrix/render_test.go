package matrix_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
)

func TestGridAndComparison(t *testing.T) {
	p80 := pp(80, tcp)
	expected := matrix.NewTable([]string{"x/a", "x/b", "ext"}, []matrix.PortProtocol{p80})
	observed := matrix.NewTable([]string{"x/a", "x/b", "ext"}, []matrix.PortProtocol{p80})
	for _, from := range []string{"x/a", "x/b", "ext"} {
		for _, to := range []string{"x/a", "x/b"} {
			allowed := from == to || to != "x/b"
			must(t, expected.Set(from, to, p80, allowed))
			if !(from == "ext" && to == "x/a") {
				must(t, observed.Set(from, to, p80, allowed || from == "x/a"))
			}
		}
	}
	wantGrid := "80/TCP x/a x/b ext\n" +
		"x/a    .   X   -\n" +
		"x/b    .   .   -\n" +
		"ext    .   X   -\n"
	if got := expected.Grid(p80); got != wantGrid {
		t.Errorf("grid:\n%s\nwant:\n%s", got, wantGrid)
	}
	got, err := matrix.Comparison(expected, observed)
	if err != nil {
		t.Fatal(err)
	}
	want := "80/TCP: 2 wrong cells\n" +
		"expected\n" + wantGrid +
		"observed\n" +
		"80/TCP x/a x/b ext\n" +
		"x/a    .   .   -\n" +
		"x/b    .   .   -\n" +
		"ext    -   X   -\n" +
		"diff 80/TCP x/a x/b ext\n" +
		"x/a         .   X   -\n" +
		"x/b         .   .   -\n" +
		"ext         ?   .   -\n\n"
	if got != want {
		t.Errorf("comparison:\n%s\nwant:\n%s", got, want)
	}
	mismatches, err := matrix.Diff(expected, observed)
	if err != nil {
		t.Fatal(err)
	}
	if len(mismatches) != 2 || mismatches[0].From != "x/a" || mismatches[0].To != "x/b" || !mismatches[0].Observed ||
		mismatches[1].From != "ext" || !mismatches[1].Missing {
		t.Errorf("mismatches = %+v", mismatches)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWideGridsNumberTheirColumns(t *testing.T) {
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("namespace-%02d-abcdef/pod", i))
	}
	p80 := pp(80, tcp)
	table := matrix.NewTable(names, []matrix.PortProtocol{p80})
	for _, from := range names {
		for _, to := range names {
			must(t, table.Set(from, to, p80, from == to))
		}
	}
	lines := strings.Split(table.Grid(p80), "\n")
	if !strings.HasPrefix(lines[0], "80/TCP") || !strings.HasSuffix(lines[0], "10 11 12") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "1 namespace-00-abcdef/pod") || !strings.HasPrefix(lines[12], "12 namespace-11-abcdef/pod") {
		t.Errorf("rows %q ... %q", lines[1], lines[12])
	}
	if len(lines[0]) > 100 {
		t.Errorf("header still %d characters wide", len(lines[0]))
	}
}
