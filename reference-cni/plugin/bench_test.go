package plugin_test

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkAddDel measures one ADD followed by one DEL of a dual-stack pod,
// driven through libcni exactly as a runtime would (one plugin process per
// command, run in the node's namespace). It reports the median and 99th
// percentile of the ADD+DEL pair and of each command.
func BenchmarkAddDel(b *testing.B) {
	h := newHarness(b)
	n := h.newNode(b, "bench", "10.244.1.0/24", "fd00:10:244:1::/64")
	_, rt := newPodNetns(b, "bench-pod")
	ctx := context.Background()

	var adds, dels, pairs []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := n.cni.AddNetworkList(ctx, n.list, rt); err != nil {
			b.Fatalf("ADD: %v", err)
		}
		added := time.Now()
		if err := n.cni.DelNetworkList(ctx, n.list, rt); err != nil {
			b.Fatalf("DEL: %v", err)
		}
		done := time.Now()
		adds = append(adds, added.Sub(start))
		dels = append(dels, done.Sub(added))
		pairs = append(pairs, done.Sub(start))
	}
	b.StopTimer()
	report := func(name string, samples []time.Duration) {
		slices.Sort(samples)
		b.ReportMetric(msAt(samples, 0.50), name+"-p50-ms")
		b.ReportMetric(msAt(samples, 0.99), name+"-p99-ms")
	}
	report("add+del", pairs)
	report("add", adds)
	report("del", dels)
}

// msAt returns the q-quantile (nearest rank) of sorted samples in ms.
func msAt(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.5) - 1
	rank = min(max(rank, 0), len(sorted)-1)
	return float64(sorted[rank].Microseconds()) / 1000
}
