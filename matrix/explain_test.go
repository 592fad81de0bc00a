package matrix_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
)

const explainPolicies = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: y}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: c}}
    - namespaceSelector: {matchLabels: {ns: x}}
      podSelector: {matchLabels: {pod: a}}
    ports: [{port: 81}, {port: serve-80-tcp}]
  - from: [{ipBlock: {cidr: 10.244.3.0/24}}]
    ports: [{protocol: UDP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-out, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{}]
`

func TestExplain(t *testing.T) {
	e := engine(t, testModel(), policies(t, explainPolicies))
	cases := []struct {
		from, to  string
		p         matrix.PortProtocol
		allowed   bool
		egress    []matrix.RuleRef
		ingress   []matrix.RuleRef
		isolating []string
		implDef   []string
		summary   string
	}{
		{
			from: "x/a", to: "y/b", p: pp(80, tcp), allowed: true,
			egress:    []matrix.RuleRef{{Policy: "x/a-out", Direction: "egress", Rule: 0, Peer: -1, Port: -1, PeerKind: "any"}},
			ingress:   []matrix.RuleRef{{Policy: "y/web", Direction: "ingress", Rule: 0, Peer: 1, Port: 1, PeerKind: "namespaceSelector+podSelector"}},
			isolating: []string{"y/deny-all", "y/web"},
			summary:   "allowed: egress allowed by x/a-out egress[0]: any peer, any port; ingress allowed by y/web ingress[0]: from[1] (namespaceSelector+podSelector), ports[1]",
		},
		{
			from: "x/b", to: "y/b", p: pp(80, tcp), allowed: false,
			isolating: []string{"y/deny-all", "y/web"},
			summary:   "denied by ingress: y/b is isolated for ingress by y/deny-all, y/web and no rule allows it",
		},
		{
			from: "z/a", to: "y/b", p: pp(81, udp), allowed: true,
			ingress:   []matrix.RuleRef{{Policy: "y/web", Direction: "ingress", Rule: 1, Peer: 0, Port: 0, PeerKind: "ipBlock", IPBlockPodIP: true}},
			isolating: []string{"y/deny-all", "y/web"},
			implDef:   []string{matrix.ImplementationDefinedIPBlockPodIP},
		},
		{
			from: "y/b", to: "x/a", p: pp(80, tcp), allowed: false,
			summary: "denied by egress: y/b is isolated for egress by y/deny-all and no rule allows it",
		},
		{
			from: "y/c", to: "y/c", p: pp(80, sctp), allowed: true,
			summary: "allowed: a pod can always reach itself",
		},
	}
	for _, tc := range cases {
		t.Run(tc.from+"->"+tc.to+" "+tc.p.String(), func(t *testing.T) {
			x, err := e.Explain(tc.from, tc.to, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if x.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v\n%s", x.Allowed, tc.allowed, x)
			}
			if tc.egress != nil && !reflect.DeepEqual(x.Egress.AllowedBy, tc.egress) {
				t.Errorf("egress allowed by %+v, want %+v", x.Egress.AllowedBy, tc.egress)
			}
			if tc.ingress != nil && !reflect.DeepEqual(x.Ingress.AllowedBy, tc.ingress) {
				t.Errorf("ingress allowed by %+v, want %+v", x.Ingress.AllowedBy, tc.ingress)
			}
			if tc.isolating != nil && !reflect.DeepEqual(x.Ingress.IsolatedBy, tc.isolating) {
				t.Errorf("ingress isolated by %v, want %v", x.Ingress.IsolatedBy, tc.isolating)
			}
			if !reflect.DeepEqual(x.ImplementationDefined, tc.implDef) {
				t.Errorf("implementation-defined = %v, want %v", x.ImplementationDefined, tc.implDef)
			}
			if tc.summary != "" && x.Summary != tc.summary {
				t.Errorf("summary = %q, want %q", x.Summary, tc.summary)
			}
		})
	}
}

func TestExplainSaysWhyRulesDidNotMatch(t *testing.T) {
	e := engine(t, testModel(), policies(t, explainPolicies))
	x, err := e.Explain("x/c", "y/b", pp(81, udp))
	if err != nil {
		t.Fatal(err)
	}
	text := x.String()
	for _, want := range []string{
		"y/deny-all has no ingress rules",
		"y/web ingress[0]: no peer matches x/c and no port matches 81/UDP",
		"y/web ingress[1]: no peer matches x/c (10.244.1.12)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("explanation lacks %q:\n%s", want, text)
		}
	}
}

func TestExplainErrors(t *testing.T) {
	e := engine(t, testModel(), nil)
	for _, tc := range []struct {
		from, to string
		p        matrix.PortProtocol
		want     string
	}{
		{"x/nope", "x/a", pp(80, tcp), `unknown source "x/nope"`},
		{"x/a", "q/a", pp(80, tcp), `unknown destination "q/a"`},
		{"x/a", "ext1", pp(80, sctp), "ext1 does not serve 80/SCTP"},
	} {
		_, err := e.Explain(tc.from, tc.to, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Explain(%s, %s, %s) error = %v, want %q", tc.from, tc.to, tc.p, err, tc.want)
		}
	}
}

// TestExplainNodeCells checks the explanations of cells between pods and
// host-network pods: the own-node rule, and another node judged by its
// address; both marked implementation-defined.
func TestExplainNodeCells(t *testing.T) {
	e := engine(t, nodeModel(), policies(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]`))
	cases := []struct {
		from, to string
		p        matrix.PortProtocol
		allowed  bool
		summary  string
	}{
		{"x/a", "hosts/host-node1", pp(8081, tcp), true, "allowed: traffic between a pod and its own node (node1) is always allowed"},
		{"hosts/host-node1", "x/c", pp(80, tcp), true, "allowed: traffic between a pod and its own node (node1) is always allowed"},
		{"x/a", "hosts/host-node2", pp(8081, tcp), false, "denied by egress: x/a is isolated for egress by x/deny-all and no rule allows it"},
		{"hosts/host-node2", "x/a", pp(80, tcp), false, "denied by ingress: x/a is isolated for ingress by x/deny-all and no rule allows it"},
	}
	for _, tc := range cases {
		x, err := e.Explain(tc.from, tc.to, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if x.Allowed != tc.allowed || x.Summary != tc.summary || !reflect.DeepEqual(x.ImplementationDefined, []string{matrix.ImplementationDefinedNode}) {
			t.Errorf("%s -> %s: allowed %v, %q, %v; want %v, %q, [Node]", tc.from, tc.to, x.Allowed, x.Summary, x.ImplementationDefined, tc.allowed, tc.summary)
		}
	}
	x, _ := e.Explain("hosts/host-node2", "x/a", pp(80, tcp))
	if !strings.Contains(x.String(), "egress at hosts/host-node2: not a pod policies select") {
		t.Errorf("the rendering does not say the host-network pod is not selected:\n%s", x)
	}
}
