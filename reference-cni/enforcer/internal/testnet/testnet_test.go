package testnet

import (
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
)

// TestEverythingConnectsWithoutPolicies checks the topology itself: with no
// enforcer, every endpoint reaches every other on every protocol, IPv4 and
// IPv6, on one node and across nodes.
func TestEverythingConnectsWithoutPolicies(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) { checkAllConnect(t, v6) })
	}
}

func checkAllConnect(t *testing.T, v6 bool) {
	{
		layout := kubemodel.Upstream(2)
		layout.IPv6First = v6
		m := layout.Model()
		topo, err := Build(New(t), m)
		if err != nil {
			t.Fatal(err)
		}
		if err := topo.Serve(); err != nil {
			t.Fatal(err)
		}
		engine, err := matrix.NewEngine(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		expected := engine.Table()
		start := time.Now()
		observed, err := topo.Observe(expected, 2*time.Second, 64)
		if err != nil {
			t.Errorf("ipv6=%v: %v", v6, err)
		}
		mismatches, err := matrix.Diff(expected, observed)
		if err != nil {
			t.Fatal(err)
		}
		cells, _ := expected.Count()
		t.Logf("ipv6=%v: %d cells probed in %v", v6, cells, time.Since(start))
		for i, mm := range mismatches {
			if i < 10 {
				t.Errorf("ipv6=%v: %s: expected %v, observed %v", v6, mm.Cell, mm.Expected, mm.Observed)
			}
		}
	}
}
