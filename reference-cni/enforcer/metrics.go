package enforcer

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Metrics counts what the enforcer did. It serves them over HTTP in the
// Prometheus text format (version 0.0.4):
//
//	netpolcheck_enforcer_syncs_total{kind="full|incremental"}
//	netpolcheck_enforcer_sync_errors_total
//	netpolcheck_enforcer_compile_problems            1 when the last sync left something out
//	netpolcheck_enforcer_unenforceable_policies      policies the last sync could not compile (previous ruleset kept)
//	netpolcheck_enforcer_elements_added_total / _removed_total
//	netpolcheck_enforcer_set_elements{set="..."}     after the last sync
//	netpolcheck_enforcer_sync_duration_seconds       histogram, whole sync
//	netpolcheck_enforcer_event_to_commit_seconds     histogram, oldest event to commit
//	netpolcheck_enforcer_last_sync_timestamp_seconds
type Metrics struct {
	mu             sync.Mutex
	syncs          map[string]int
	errors         int
	problems       bool
	unenforceable  int
	added, removed int
	sets           map[string]int
	syncDuration   *histogram
	eventToCommit  *histogram
	lastSync       time.Time
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		syncs:         map[string]int{"full": 0, "incremental": 0},
		sets:          map[string]int{},
		syncDuration:  newHistogram(),
		eventToCommit: newHistogram(),
	}
}

func (m *Metrics) observe(c Commit, problems bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kind := "incremental"
	if c.Programmed.Full {
		kind = "full"
	}
	m.syncs[kind]++
	m.problems = problems
	m.added += c.Programmed.Added
	m.removed += c.Programmed.Removed
	m.sets = c.Programmed.Sets
	m.syncDuration.observe(c.Total)
	if c.Events > 0 {
		m.eventToCommit.observe(c.EventLatency)
	}
	m.lastSync = time.Now()
}

func (m *Metrics) observeUnenforceable(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unenforceable = n
}

func (m *Metrics) observeError() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors++
}

// ServeHTTP writes the metrics.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WriteTo(w)
}

// WriteTo writes the metrics in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	const prefix = "netpolcheck_enforcer_"
	header := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s%s %s\n# TYPE %s%s %s\n", prefix, name, help, prefix, name, typ)
	}
	header("syncs_total", "counter", "Successful syncs, by kind.")
	for _, kind := range []string{"full", "incremental"} {
		fmt.Fprintf(&b, "%ssyncs_total{kind=%q} %d\n", prefix, kind, m.syncs[kind])
	}
	header("sync_errors_total", "counter", "Failed syncs.")
	fmt.Fprintf(&b, "%ssync_errors_total %d\n", prefix, m.errors)
	header("compile_problems", "gauge", "1 when the last sync left out a policy or peer it could not parse.")
	fmt.Fprintf(&b, "%scompile_problems %d\n", prefix, map[bool]int{false: 0, true: 1}[m.problems])
	header("unenforceable_policies", "gauge", "Policies the last sync could not compile at all; while there are any, the previous ruleset stays in force.")
	fmt.Fprintf(&b, "%sunenforceable_policies %d\n", prefix, m.unenforceable)
	header("elements_added_total", "counter", "Set elements added.")
	fmt.Fprintf(&b, "%selements_added_total %d\n", prefix, m.added)
	header("elements_removed_total", "counter", "Set elements removed.")
	fmt.Fprintf(&b, "%selements_removed_total %d\n", prefix, m.removed)
	header("set_elements", "gauge", "Elements of each nftables set after the last sync.")
	names := make([]string, 0, len(m.sets))
	for name := range m.sets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%sset_elements{set=%q} %d\n", prefix, name, m.sets[name])
	}
	header("sync_duration_seconds", "histogram", "Duration of successful syncs: snapshot, compile and nftables transaction.")
	m.syncDuration.write(&b, prefix+"sync_duration_seconds")
	header("event_to_commit_seconds", "histogram", "Time from the oldest event a sync took in to its committed transaction.")
	m.eventToCommit.write(&b, prefix+"event_to_commit_seconds")
	header("last_sync_timestamp_seconds", "gauge", "Unix time of the last successful sync.")
	var last float64
	if !m.lastSync.IsZero() {
		last = float64(m.lastSync.UnixNano()) / 1e9
	}
	fmt.Fprintf(&b, "%slast_sync_timestamp_seconds %g\n", prefix, last)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// histogram is a cumulative histogram of durations over fixed buckets.
type histogram struct {
	bounds []float64 // seconds
	counts []int     // per bucket, not cumulative; the last one is +Inf
	sum    float64
	total  int
}

func newHistogram() *histogram {
	bounds := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	return &histogram{bounds: bounds, counts: make([]int, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i, _ := slices.BinarySearch(h.bounds, s)
	h.counts[i]++
	h.sum += s
	h.total++
}

func (h *histogram) write(b *strings.Builder, name string) {
	cumulative := 0
	for i, bound := range h.bounds {
		cumulative += h.counts[i]
		fmt.Fprintf(b, "%s_bucket{le=\"%g\"} %d\n", name, bound, cumulative)
	}
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n", name, h.total)
	fmt.Fprintf(b, "%s_sum %g\n%s_count %d\n", name, h.sum, name, h.total)
}
