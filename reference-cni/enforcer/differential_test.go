package enforcer_test

import (
	"fmt"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
)

// Differential tests: pods in network namespaces on two nodes, enforcers fed
// by a fake clientset, and the observed matrix compared cell by cell with the
// engine's expected table (see testCluster.check).

// TestDifferentialSeedRecipes runs every step of every seed recipe, on the
// recipe's own namespaces, pods and external hosts spread over two nodes. It
// also checks the outcomes the recipe states.
func TestDifferentialSeedRecipes(t *testing.T) {
	all := recipes.All()
	if len(all) == 0 {
		t.Fatal("no recipes")
	}
	for _, r := range all {
		t.Run(r.ID, func(t *testing.T) {
			m := r.Model()
			kubemodel.Place(m, 2)
			kubemodel.AddNameLabels(m)
			c := newTestCluster(t, m)
			c.start(enforcer.Options{})
			var policies []*networkingv1.NetworkPolicy
			for _, step := range r.Steps {
				if step.Rejected != "" {
					continue // never reaches an API server, so never an enforcer
				}
				next, err := step.Policies(policies)
				if err != nil {
					t.Fatalf("step %q: %v", step.Name, err)
				}
				policies = next
				c.apply(policies)
				name := fmt.Sprintf("%s step %q", r.ID, step.Name)
				c.check(name)
				c.checkOutcomes(name, step.Expect)
			}
		})
	}
}

// checkOutcomes probes the connections a recipe step states, all at once.
func (c *testCluster) checkOutcomes(name string, outcomes []recipes.Outcome) {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, o := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome, err := c.topo.Probe(o.From, o.To, o.PortProtocol(), deniedTimeout)
			if outcome.Reached() != o.Allowed {
				outcome, err = c.topo.Probe(o.From, o.To, o.PortProtocol(), recheckTimeout)
			}
			if outcome.Reached() != o.Allowed {
				c.t.Errorf("%s: %s: observed %s (%v); the recipe says: %s", name, o, outcome, err, o.Doc)
			}
		}()
	}
	wg.Wait()
}

// TestDifferentialGenerated runs 240 cases of the shared generator (with
// their update steps) on the upstream-shaped model over two nodes, IPv4.
func TestDifferentialGenerated(t *testing.T) {
	cases := generate.Cases(20260801, 240, kubemodel.Universe())
	c := newTestCluster(t, kubemodel.Upstream(2).Model())
	c.start(enforcer.Options{})
	steps := 0
	for _, gc := range cases {
		for i, policies := range gc.Steps {
			c.apply(policies)
			c.check(fmt.Sprintf("%s, step %d", gc.Name, i))
			steps++
		}
		if t.Failed() {
			t.Fatalf("stopping after the first failing case (%d steps run)", steps)
		}
	}
	t.Logf("%d cases, %d steps", len(cases), steps)
}

// TestDifferentialRandomIPv6 runs 60 generated cases (IPv6 and IPv4
// ipBlocks with nested excepts, named ports under the wrong protocol, wide
// endPort ranges) with IPv6 as the probed family.
func TestDifferentialRandomIPv6(t *testing.T) {
	layout := kubemodel.Upstream(2)
	layout.IPv6First = true
	c := newTestCluster(t, layout.Model())
	c.start(enforcer.Options{})
	gen := generate.New(generate.Seeded(6), kubemodel.Universe())
	for i := range 60 {
		c.apply(gen.Policies(fmt.Sprintf("rand%d", i), 4))
		c.check(fmt.Sprintf("random case %d", i))
		if t.Failed() {
			t.FailNow()
		}
	}
}
