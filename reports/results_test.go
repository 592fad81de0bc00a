package reports_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reports"
)

func TestStepOfAndSnapshotOf(t *testing.T) {
	// Endpoints x/a x/b y/a ext; rows are sources. ext serves 80/TCP only,
	// namespace x admits 80/TCP from x only, a pod always reaches itself.
	wantExpected := []string{
		"...." + "...." + "XX.." + "XX..",
		".X.-" + "X..-" + "XX.-" + "XX.-",
	}
	for _, tc := range []struct {
		name         string
		enforcing    bool
		skip         string
		wantCells    int
		wantObserved []string
		wantWrong    []string // mismatches, rendered
	}{
		{
			name: "enforcing cluster", enforcing: true, wantCells: 28,
			wantObserved: wantExpected,
		},
		{
			name: "source not probed", enforcing: true, skip: "y/a", wantCells: 21,
			wantObserved: []string{"........????XX..", ".X.-X..-???-XX.-"},
		},
		{
			name: "no enforcement", enforcing: false, wantCells: 28,
			wantObserved: []string{"................", "...-...-...-...-"},
			wantWrong: []string{
				"y/a -> x/a 80/TCP: expected denied, observed connected (1 attempts)",
				"y/a -> x/b 80/TCP: expected denied, observed connected (1 attempts)",
				"ext -> x/a 80/TCP: expected denied, observed connected (1 attempts)",
				"ext -> x/b 80/TCP: expected denied, observed connected (1 attempts)",
				"x/a -> x/b 81/UDP: expected denied, observed connected (1 attempts)",
				"x/b -> x/a 81/UDP: expected denied, observed connected (1 attempts)",
				"y/a -> x/a 81/UDP: expected denied, observed connected (1 attempts)",
				"y/a -> x/b 81/UDP: expected denied, observed connected (1 attempts)",
				"ext -> x/a 81/UDP: expected denied, observed connected (1 attempts)",
				"ext -> x/b 81/UDP: expected denied, observed connected (1 attempts)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := probeStep(t, tc.enforcing, tc.skip)
			if step.Name != "apply" || step.Cells != tc.wantCells || step.Wrong != len(tc.wantWrong) || step.Rounds != 1 {
				t.Errorf("step %q: %d cells, %d wrong, %d rounds; want %d cells, %d wrong, 1 round",
					step.Name, step.Cells, step.Wrong, step.Rounds, tc.wantCells, len(tc.wantWrong))
			}
			table := step.Table
			if !slices.Equal(table.Endpoints, []string{"x/a", "x/b", "y/a", "ext"}) || !slices.Equal(table.Ports, []string{"80/TCP", "81/UDP"}) {
				t.Fatalf("snapshot endpoints %v, ports %v", table.Endpoints, table.Ports)
			}
			if !slices.Equal(table.Expected, wantExpected) || !slices.Equal(table.Observed, tc.wantObserved) {
				t.Errorf("snapshot expected %q, observed %q; want %q, %q", table.Expected, table.Observed, wantExpected, tc.wantObserved)
			}
			var got []string
			for _, m := range step.Mismatches {
				got = append(got, m.String())
				if !strings.Contains(m.Explanation, m.From+" -> "+m.To) || !strings.Contains(m.Explanation, "isolated for ingress by x/same-namespace-web") {
					t.Errorf("mismatch %s: explanation %q", m, m.Explanation)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.wantWrong))
			if !slices.Equal(got, want) {
				t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if step.Convergence.Max <= 0 || step.Convergence.P50 > step.Convergence.Max {
				t.Errorf("convergence %+v", step.Convergence)
			}
		})
	}
}

func TestSnapshotDiffGrids(t *testing.T) {
	s := &reports.Snapshot{
		Endpoints: []string{"a", "b"},
		Ports:     []string{"80/TCP"},
		Expected:  []string{".X.-"},
		Observed:  []string{"..?-"},
	}
	grids, err := s.DiffGrids()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"80/TCP: 2 wrong cells", "expected\n80/TCP a b\na      . X\n", "diff 80/TCP a b\na           . X\nb           ? -\n"} {
		if !strings.Contains(grids, w) {
			t.Errorf("grids lack %q:\n%s", w, grids)
		}
	}
	for _, bad := range []*reports.Snapshot{
		{Endpoints: []string{"a"}, Ports: []string{"80/TCP"}, Expected: []string{".."}, Observed: []string{"."}},
		{Endpoints: []string{"a"}, Ports: []string{"80"}, Expected: []string{"."}, Observed: []string{"."}},
		{Endpoints: []string{"a"}, Ports: []string{"80/TCP"}, Expected: []string{"!"}, Observed: []string{"."}},
	} {
		if _, err := bad.DiffGrids(); err == nil {
			t.Errorf("snapshot %+v: no error", bad)
		}
	}
}

func TestStepOfKeepsTheTransportRetries(t *testing.T) {
	table := matrix.NewTable([]string{"x/a"}, []matrix.PortProtocol{{Port: 80, Protocol: "TCP"}})
	step := reports.StepOf("apply", &matrix.Report{Expected: table, Observed: table, TransportRetries: 2}, nil, reports.Coverage{})
	if step.TransportRetries != 2 {
		t.Errorf("step records %d transport retries, want 2", step.TransportRetries)
	}
}

func TestReadRunReadsGzippedResults(t *testing.T) {
	run := &reports.Run{Name: "kube-router", CNI: "kube-router", Cases: []reports.Case{
		{ID: "conformance/ports", Suite: "conformance", State: reports.Passed},
	}}
	dir := t.TempDir()
	plain := filepath.Join(dir, "results.json")
	if err := run.Write(plain); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "results.json.gz")
	if err := os.WriteFile(path, zipped.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := reports.ReadRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != "kube-router" || len(back.Cases) != 1 || back.Cases[0].ID != "conformance/ports" {
		t.Errorf("gzipped results.json read back as %+v", back)
	}
	if err := os.WriteFile(path, zipped.Bytes()[:zipped.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.ReadRun(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a truncated gzip file: err = %v, want an error naming %s", err, path)
	}
}
