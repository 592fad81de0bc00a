package reports_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reports"
)

// snapshotDir holds the committed runs of third-party CNIs, one directory
// per CNI: results.json (or results.json.gz), summary.md and README.md,
// which explains every case the CNI fails.
const snapshotDir = "../docs/results"

// runCounts are the outcomes of a run's cases.
type runCounts struct{ passed, failed, divergent, incomplete int }

func countRun(run *reports.Run) runCounts {
	var n runCounts
	for _, c := range run.Cases {
		switch {
		case c.State == reports.Passed:
			n.passed++
		case c.Divergent():
			n.divergent++
		case c.State == reports.Failed:
			n.failed++
		case c.State == reports.Incomplete:
			n.incomplete++
		}
	}
	return n
}

// readSnapshot reads the committed run of cni: results.json, or
// results.json.gz when it is large.
func readSnapshot(t *testing.T, cni string) *reports.Run {
	t.Helper()
	dir := filepath.Join(snapshotDir, cni)
	path := filepath.Join(dir, "results.json")
	if _, err := os.Stat(path); err != nil {
		path += ".gz"
	}
	run, err := reports.ReadRun(path)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// snapshotTolerance is how many cases a real run's passed, failed and
// divergent counts may differ from the committed snapshot's: a case whose
// outcome depends on timing (a policy change racing a probe round) may
// land either way. Before UDP probes took their source ports in turn, full
// kube-router runs differed by up to 4 cases (309 to 313 passed), all on
// flaky UDP cells; the snapshot of 2026-12-02 15:41 had none.
const snapshotTolerance = 6

// checkAgainstSnapshot checks a real run of cni (make test's
// TEST_OUT/<cni>) against its committed snapshot: every cell probed, the
// counts within snapshotTolerance, and every case that fails or diverges
// named in the snapshot's README.md, where its cause is explained.
func checkAgainstSnapshot(t *testing.T, run *reports.Run, cni string) {
	t.Helper()
	snapshot := readSnapshot(t, cni)
	if len(run.Cases) != len(snapshot.Cases) {
		t.Errorf("%s run: %d cases, the snapshot has %d", cni, len(run.Cases), len(snapshot.Cases))
	}
	got, want := countRun(run), countRun(snapshot)
	for _, c := range []struct {
		what      string
		got, want int
	}{{"passed", got.passed, want.passed}, {"failed", got.failed, want.failed}, {"divergent", got.divergent, want.divergent}} {
		if d := c.got - c.want; d > snapshotTolerance || d < -snapshotTolerance {
			t.Errorf("%s run: %d cases %s, the snapshot %d (tolerance %d)", cni, c.got, c.what, c.want, snapshotTolerance)
		}
	}
	if got.incomplete != 0 {
		t.Errorf("%s run: %d cases incomplete: the local cluster probes every cell", cni, got.incomplete)
	}
	readme, err := os.ReadFile(filepath.Join(snapshotDir, cni, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	explained := explainedCases(string(readme))
	for _, c := range run.Cases {
		if n := c.NotProbed(); n > 0 {
			t.Errorf("%s run: %s has %d cells not probed: the local cluster probes every cell", cni, c.ID, n)
		}
		if c.State == reports.Failed && !slices.Contains(explained, c.ID) {
			t.Errorf("%s run: %s fails (%s), and docs/results/%s/README.md does not explain it", cni, c.ID, firstLine(c.Failure), cni)
		}
	}
	t.Logf("%s run: %+v; snapshot %+v; %d cases named in its README", cni, got, want, len(explained))
}

// explainedCases returns the case IDs a results README names in backquotes
// (`conformance/...`, `recipes/...`, `generated/...`).
func explainedCases(readme string) []string {
	var ids []string
	for i, part := range strings.Split(readme, "`") {
		if i%2 == 1 && (strings.HasPrefix(part, "conformance/") || strings.HasPrefix(part, "recipes/") || strings.HasPrefix(part, "generated/")) {
			ids = append(ids, part)
		}
	}
	return ids
}

// The committed snapshots of third-party CNIs explain every case they fail.
func TestSnapshotsExplainEveryFailure(t *testing.T) {
	for _, cni := range []string{"kube-router"} {
		run := readSnapshot(t, cni)
		checkAgainstSnapshot(t, run, cni)
		if n := countRun(run); n.failed+n.divergent == 0 {
			t.Logf("%s: the snapshot fails no case", cni)
		}
	}
}

// The Flannel snapshot: Flannel enforces nothing, so it fails exactly the
// cases whose expected tables deny a cell (docs/results/flannel/README.md).
func TestFlannelSnapshotFailsWhatNeedsEnforcement(t *testing.T) {
	run := readSnapshot(t, "flannel")
	n := checkFailsWhatNeedsEnforcement(t, run)
	if n == 0 || len(run.Cases) == 0 {
		t.Fatalf("flannel snapshot: %d cases, %d need enforcement", len(run.Cases), n)
	}
	if got := countRun(run); got.failed+got.divergent != n || got.incomplete != 0 {
		t.Errorf("flannel snapshot: %+v, want %d failing or divergent and none incomplete", got, n)
	}
	t.Logf("flannel snapshot: %d of %d cases need enforcement and fail", n, len(run.Cases))
}
