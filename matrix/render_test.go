package matrix_test

import (
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
