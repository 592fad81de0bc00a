package enforcer_test

import (
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
)

// TestPolicyChangeStopsStaleFlows sends UDP probes from fixed source ports,
// first while they are allowed, so conntrack holds their flows, then again
// over the very same 5-tuples once a policy denies them, as a probe whose
// random ephemeral port collides with an earlier flow would. A new policy
// applies to them at once: a stale conntrack entry must not carry a denied
// packet through, for ingress (x/a), egress to a pod and egress to an
// external host (y/b).
func TestPolicyChangeStopsStaleFlows(t *testing.T) {
	c := newTestCluster(t, kubemodel.Upstream(2).Model())
	c.start(enforcer.Options{})
	flows := []struct {
		from, to  string
		localPort int
		port      int32
	}{
		{"x/b", "x/a", 40001, 81},  // ingress of x/a, same node
		{"z/c", "x/a", 40002, 80},  // ingress of x/a, across nodes
		{"y/b", "z/c", 40003, 81},  // egress of y/b to a pod
		{"y/b", "ext1", 40004, 80}, // egress of y/b to an external host
	}
	for _, f := range flows {
		if outcome, err := c.topo.ProbeUDPFrom(f.from, f.to, f.localPort, f.port, time.Second); !outcome.Reached() {
			t.Fatalf("%s:%d -> %s %d/UDP before any policy: %s %v", f.from, f.localPort, f.to, f.port, outcome, err)
		}
	}
	c.apply(parsePolicies(t, "deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-a}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: y}
spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Egress]}
`))
	for _, f := range flows {
		if outcome, err := c.topo.ProbeUDPFrom(f.from, f.to, f.localPort, f.port, 500*time.Millisecond); outcome.Reached() {
			t.Errorf("%s:%d -> %s %d/UDP got through its conntrack entry after a policy denied it: %s %v", f.from, f.localPort, f.to, f.port, outcome, err)
		}
	}
	c.check("after the deny policies")
}
