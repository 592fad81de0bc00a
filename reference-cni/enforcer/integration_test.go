package enforcer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

// handwrittenCases are policy sets covering each feature once; the IPv6
// variant of a case uses the same policies, which is why most carry both
// families' CIDRs.
func handwrittenCases() []struct{ name, yaml string } {
	return []struct{ name, yaml string }{
		{"no-policies", ``},
		{"deny-all-ingress-in-x", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {}, policyTypes: [Ingress]}
`},
		{"allow-pod-b-tcp-80", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]
`},
		{"namespace-selector-and-pod-selector", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y-c}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: c}}}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]
    ports: [{protocol: UDP}]
`},
		{"egress-deny-but-udp-81-and-ipblock", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
  egress:
  - ports: [{port: 81, protocol: UDP}]
  - to: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.10/32]}}, {ipBlock: {cidr: "fd00:10:244::/56", except: ["fd00:10:244:1::/64"]}}]
`},
		{"ingress-ipblock-except-matches-pods-and-externals", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: block, namespace: y}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.244.2.0/24, 192.0.2.11/32]}}, {ipBlock: {cidr: "::/0", except: ["fd00:10:244:2::/64"]}}]
    ports: [{port: 80, endPort: 81, protocol: TCP}, {port: 80, protocol: SCTP}]
`},
		{"named-ports-both-directions", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-in}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-udp, protocol: UDP}, {port: serve-80-tcp}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-out, namespace: z}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {}}, {ipBlock: {cidr: 192.0.2.0/24}}], ports: [{port: serve-80-sctp, protocol: SCTP}, {port: serve-81-tcp, protocol: TCP}]}]
`},
		{"sctp-only-and-policy-union", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sctp}
spec:
  podSelector: {matchLabels: {pod: c}}
  policyTypes: [Ingress, Egress]
  ingress: [{ports: [{protocol: SCTP}]}]
  egress: [{to: [{podSelector: {}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sctp-also-tcp-81}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}], ports: [{port: 81}]}]
`},
		{"egress-isolated-both-namespaces", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: y}
spec:
  podSelector: {}
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: x}}}]}]
`},
	}
}

// TestHandwrittenCases applies each hand-written case on two nodes, with
// IPv4 and with IPv6 as the probed family, and compares every cell of the
// observed matrix with the engine's expected table.
func TestHandwrittenCases(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
		t.Run(name, func(t *testing.T) {
			layout := kubemodel.Upstream(2)
			layout.IPv6First = v6
			c := newTestCluster(t, layout.Model())
			c.start(enforcer.Options{})
			for _, tc := range handwrittenCases() {
				c.apply(parsePolicies(t, tc.name, tc.yaml))
				c.check(tc.name)
			}
		})
	}
}

// TestPodLabelChangeIsIncremental relabels one pod and checks that the
// enforcers send a few element changes, not a full ruleset, and that the
// matrix follows.
func TestPodLabelChangeIsIncremental(t *testing.T) {
	c := newTestCluster(t, kubemodel.Upstream(2).Model())
	c.start(enforcer.Options{})
	c.apply(parsePolicies(t, "allow-b", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{to: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]
`))
	c.check("before relabel")
	before := map[string]int{}
	for node, r := range c.enforcers {
		before[node] = len(r.allCommits())
	}

	ctx := context.Background()
	pod, err := c.client.CoreV1().Pods("y").Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"pod": "b"}
	if _, err := c.client.CoreV1().Pods("y").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range c.model.Pods {
		if c.model.Pods[i].Namespace == "y" && c.model.Pods[i].Name == "c" {
			c.model.Pods[i].Labels = pod.Labels
		}
	}
	relabelled := func(cm enforcer.Commit) bool {
		for _, p := range cm.Input.Pods {
			if p.Namespace == "y" && p.Name == "c" {
				return p.Labels["pod"] == "b"
			}
		}
		return false
	}
	for node, r := range c.enforcers {
		cm := r.waitFor(t, "y/c relabelled", relabelled)
		res := cm.Programmed
		t.Logf("%s: relabel committed %+v in %v (event to commit %v)", node, res, cm.Total, cm.EventLatency)
		if res.Full || res.Added == 0 || res.Added+res.Removed > res.Elements/4 {
			t.Errorf("%s: relabel sync = %+v, want a small incremental change", node, res)
		}
		for _, old := range r.allCommits()[before[node]:] {
			if old.Programmed.Full {
				t.Errorf("%s: a full sync happened after the relabel", node)
			}
		}
	}
	c.check("after relabel")
}

// TestProfileNoneEnforcesNothing: with the none profile a deny-all policy
// changes nothing.
func TestProfileNoneEnforcesNothing(t *testing.T) {
	c := newTestCluster(t, kubemodel.Upstream(1).Model())
	c.start(enforcer.Options{Profile: enforcer.ProfileNone})
	c.apply(parsePolicies(t, "deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`))
	open, err := matrix.NewEngine(c.model, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.compare("profile none", open, open.Table())
}

// TestProfileDelayProgramsLate: with the delay profile, a new deny policy
// takes effect only after the delay, then matches the engine.
func TestProfileDelayProgramsLate(t *testing.T) {
	const delay = 1500 * time.Millisecond
	c := newTestCluster(t, kubemodel.Upstream(1).Model())
	c.start(enforcer.Options{Profile: enforcer.ProfileDelay, Delay: delay})
	policies := parsePolicies(t, "deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
`)
	start := time.Now()
	c.setPolicies(policies)
	pp := matrix.PortProtocol{Port: 80, Protocol: "TCP"}
	if outcome, err := c.topo.Probe("x/b", "x/a", pp, time.Second); !outcome.Reached() {
		t.Errorf("x/b -> x/a was denied %v after the policy, before the delay passed: %s %v", time.Since(start), outcome, err)
	}
	for _, r := range c.enforcers {
		cm := r.waitFor(t, "the deny policy", holdsPolicies(policies))
		if cm.EventLatency < delay {
			t.Errorf("event to commit %v, want at least the delay %v", cm.EventLatency, delay)
		}
	}
	c.check("after the delay")
}

// TestResyncRestoresDeletedTable: `nft delete table inet netpolcheck` on a
// node opens its pods; the next resync restores the table within the resync
// period, and the matrix matches the engine again.
func TestResyncRestoresDeletedTable(t *testing.T) {
	const resync = time.Second
	c := newTestCluster(t, kubemodel.Upstream(1).Model())
	c.start(enforcer.Options{Resync: resync})
	c.apply(parsePolicies(t, "deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
`))
	c.check("before the deletion")
	for node, ns := range c.topo.Nodes {
		if out, err := ns.Exec("nft", "delete", "table", "inet", nft.TableName); err != nil {
			t.Fatalf("%s: deleting the table: %v: %s", node, err, out)
		}
		deleted := time.Now()
		for {
			out, err := ns.Exec("nft", "list", "set", "inet", nft.TableName, "ingress-isolated-ip4")
			if err == nil && strings.Contains(out, "elements") {
				t.Logf("%s: table restored %v after its deletion", node, time.Since(deleted).Round(time.Millisecond))
				break
			}
			if time.Since(deleted) > 2*resync {
				t.Fatalf("%s: table not restored within %v (resync %v): %v %s", node, 2*resync, resync, err, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.check("after the resync")
}
