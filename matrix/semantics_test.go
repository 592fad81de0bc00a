package matrix_test

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// TestSemantics has one row per rule of the NetworkPolicy API (DESIGN.md,
// "NetworkPolicy semantics"). Each row states the whole expected table as a
// plain predicate over (from, to, port); self-traffic is always allowed and is
// added by checkTable.
func TestSemantics(t *testing.T) {
	all := func(from, to endpoint, p matrix.PortProtocol) bool { return true }
	cases := []struct {
		rule     string
		policies string
		want     func(from, to endpoint, p matrix.PortProtocol) bool
	}{
		{
			rule: "no policy: every pod is non-isolated and everything is allowed",
			want: all,
		},
		{
			rule: "a policy with Ingress in policyTypes and no rules isolates the selected pod for ingress: nothing reaches it",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" },
		},
		{
			rule: "a policy with Egress in policyTypes and no rules isolates the selected pod for egress: it reaches nothing",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-out-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return from.name != "x/a" },
		},
		{
			rule: "policyTypes defaults to [Ingress] when only ingress rules exist: egress stays open",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in-from-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || from.name == "x/b" },
		},
		{
			rule: "policyTypes defaults to [Ingress, Egress] when egress rules exist: ingress is isolated too, with no ingress rule",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out-to-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress:
  - to: [{podSelector: {matchLabels: {pod: b}}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				if to.name == "x/a" {
					return false
				}
				return from.name != "x/a" || to.name == "x/b"
			},
		},
		{
			rule: "policyTypes [Egress] ignores ingress rules: the pod is not isolated for ingress",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
  egress:
  - {}`,
			want: all,
		},
		{
			rule: "ingress: [{}] allows everything, pods and external hosts",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all-in}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{}]`,
			want: all,
		},
		{
			rule: "ingress: [] (an empty rule list) denies every connection for the isolated direction",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-in}
spec:
  podSelector: {}
  ingress: []`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.ns != "x" },
		},
		{
			rule: "egress: [{}] allows every destination, including external hosts",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all-out}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{}]`,
			want: all,
		},
		{
			rule: "a rule without from matches every peer, on the ports it lists",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: port-80-from-anyone}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: 80}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return to.name != "x/a" || p == pp(80, tcp)
			},
		},
		{
			rule: "a rule without ports matches every port and protocol of its peers",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-any-port}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || from.name == "x/b" },
		},
		{
			rule: "a peer with podSelector alone selects pods in the policy's namespace only",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-all-pods-here, namespace: y}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.ns != "y" || from.ns == "y" },
		},
		{
			rule: "a peer with namespaceSelector alone selects every pod of the matching namespaces",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-ns-z}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || from.ns == "z" },
		},
		{
			rule: "namespaceSelector: {} selects every pod in every namespace, but not external hosts",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-any-pod}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || !from.external() },
		},
		{
			rule: "namespaceSelector and podSelector in one peer are ANDed",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-z-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: z}}
      podSelector: {matchLabels: {pod: b}}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || from.name == "z/b" },
		},
		{
			rule: "separate peers in one rule are ORed",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-z-or-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: z}}
    - podSelector: {matchLabels: {pod: b}}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return to.name != "x/a" || from.ns == "z" || from.name == "x/b"
			},
		},
		{
			rule: "matchExpressions In",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y, z]}]}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return to.name != "x/a" || from.ns == "y" || from.ns == "z"
			},
		},
		{
			rule: "matchExpressions NotIn (also matches objects without the label)",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: notin}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [b, c]}]}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return to.name != "x/a" || (from.ns == "x" && from.pod != "a")
			},
		},
		{
			rule: "matchExpressions Exists",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: exists}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: Exists}]}
      podSelector: {matchExpressions: [{key: pod, operator: Exists}]}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || !from.external() },
		},
		{
			rule: "matchExpressions DoesNotExist",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: doesnotexist}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: pod, operator: DoesNotExist}]}`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" },
		},
		{
			rule: "ipBlock matches external hosts by IP",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-ext1}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: 192.0.2.10/32}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || from.name == "ext1" },
		},
		{
			rule: "ipBlock except removes addresses from the cidr",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-ext-but-ext2}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.11/32]}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return from.name != "x/a" || to.name == "ext1" },
		},
		{
			rule: "ipBlock matches pod IPs too (implementation-defined; the upstream conformance tests expect it)",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-node-2-pods}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.3.0/24]}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return to.name != "x/a" || from.ns == "x" || from.ns == "y"
			},
		},
		{
			rule: "an IPv6 ipBlock never matches IPv4 connections (the connection uses the destination's primary family)",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-v6}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: "fd00:10:244::/48"}}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" },
		},
		{
			rule: "a numbered port matches that port on the given protocol only",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: udp-81}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{protocol: UDP, port: 81}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || p == pp(81, udp) },
		},
		{
			rule: "the protocol of a port defaults to TCP",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: port-81}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: 81}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || p == pp(81, tcp) },
		},
		{
			rule: "a port with a protocol and no number matches every port of that protocol",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all-sctp}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{protocol: SCTP}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || p.Protocol == sctp },
		},
		{
			rule: "endPort allows the whole range port..endPort",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{protocol: UDP, port: 79, endPort: 80}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || p == pp(80, udp) },
		},
		{
			rule: "a named port is resolved on the destination pod's container ports, with its protocol",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: serve-81-udp, protocol: UDP}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" || p == pp(81, udp) },
		},
		{
			rule: "a named port whose protocol differs from the container port's never matches",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-wrong-protocol}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: serve-81-udp}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "x/a" },
		},
		{
			rule: "an egress named port is resolved on each destination pod, and never matches an external host",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-named}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: serve-80-tcp}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return from.name != "x/a" || (!to.external() && p == pp(80, tcp))
			},
		},
		{
			rule: "policies are additive: the allowed set is the union of every selecting policy's rules",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-c-port-80}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}], ports: [{port: 80}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				if to.ns != "x" {
					return true
				}
				return to.name == "x/a" && (from.name == "x/b" || (from.name == "x/c" && p == pp(80, tcp)))
			},
		},
		{
			rule: "a connection needs egress at the source AND ingress at the destination",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-out-to-y}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: y-in-from-z, namespace: y}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				out := from.name != "x/a" || to.ns == "y"
				in := to.ns != "y" || from.ns == "z"
				return out && in
			},
		},
		{
			rule: "a pod can always reach itself, even isolated both ways",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-everything}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return from.ns != "x" && to.ns != "x" },
		},
		{
			rule: "a policy selects pods of its own namespace only",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-a, namespace: z}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return to.name != "z/a" },
		},
		{
			rule: "external hosts are never isolated: external to external is allowed, pod to external follows the pod's egress",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-pods-out}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {}}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return from.ns != "x" || !to.external() },
		},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			checkTable(t, engine(t, testModel(), policies(t, tc.policies)), tc.want)
		})
	}
}

// nodeModel is testModel with every pod on a node (pod a and c of every
// namespace on node1, b on node2) and one host-network pod per node in
// namespace hosts, with the node's address, serving 8081/TCP.
func nodeModel() *matrix.Model {
	m := testModel()
	for i := range m.Pods {
		m.Pods[i].Node = map[string]string{"a": "node1", "b": "node2", "c": "node1"}[m.Pods[i].Name]
	}
	m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: "hosts", Labels: map[string]string{"ns": "hosts"}})
	for i, node := range []string{"node1", "node2"} {
		m.Pods = append(m.Pods, matrix.Pod{Namespace: "hosts", Name: "host-" + node, Node: node, HostNetwork: true,
			Labels: map[string]string{"pod": "host"}, IPs: []string{fmt.Sprintf("172.18.0.%d", 2+i)},
			Containers: []matrix.Container{{Name: "serve-8081-tcp", Ports: []matrix.ContainerPort{{ContainerPort: 8081}}}}})
	}
	return m
}

// TestNodeSemantics has one row per rule of the engine for traffic between
// pods and nodes (host-network pods), which the API leaves to
// implementations: a pod and its own node always reach each other; another
// node is like an address outside the cluster (only ipBlocks and rules
// without peers admit it); no policy selects a host-network pod and no
// selector peer matches one. Every cell between a pod and a host-network pod
// is marked implementation-defined (Node), and no other cell is.
func TestNodeSemantics(t *testing.T) {
	m := nodeModel()
	nodes := map[string]string{}
	for _, p := range m.Pods {
		nodes[matrix.PodName(p.Namespace, p.Name)] = p.Node
	}
	host := func(e endpoint) bool { return e.ns == "hosts" }
	// nodeCell: a pod of x and a node, ownNode: on the same node
	nodeCell := func(from, to endpoint) bool { return host(from) != host(to) && (from.ns == "x" || to.ns == "x") }
	ownNode := func(from, to endpoint) bool { return nodeCell(from, to) && nodes[from.name] == nodes[to.name] }
	const denyAllX = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]`
	cases := []struct {
		rule     string
		policies string
		want     func(from, to endpoint, p matrix.PortProtocol) bool
	}{
		{
			rule: "no policy: pods and nodes reach each other",
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return true },
		},
		{
			rule:     "isolated both ways, a pod still reaches its own node and its node reaches it; other nodes are denied",
			policies: denyAllX,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return (from.ns != "x" && to.ns != "x") || ownNode(from, to)
			},
		},
		{
			rule: "selector peers never match a host-network pod, even namespaceSelector {}",
			policies: denyAllX + `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: every-pod}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}]}]
  egress: [{to: [{namespaceSelector: {}}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				if from.external() || to.external() {
					return from.ns != "x" && to.ns != "x"
				}
				return !nodeCell(from, to) || ownNode(from, to)
			},
		},
		{
			rule: "an ipBlock holding the nodes' addresses admits other nodes, both ways",
			policies: denyAllX + `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: nodes}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 172.18.0.0/16}}]}]
  egress: [{to: [{ipBlock: {cidr: 172.18.0.0/16}}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				return (from.ns != "x" && to.ns != "x") || nodeCell(from, to)
			},
		},
		{
			rule: "an egress rule without peers admits other nodes on its ports",
			policies: denyAllX + `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out-8081}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: 8081}]}]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool {
				if from.ns == "x" && to.ns != "x" && p == pp(8081, tcp) {
					return true
				}
				return (from.ns != "x" && to.ns != "x") || ownNode(from, to)
			},
		},
		{
			rule: "no policy selects a host-network pod, even podSelector {} in its namespace",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: hosts}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]`,
			want: func(from, to endpoint, p matrix.PortProtocol) bool { return true },
		},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			e := engine(t, m, policies(t, tc.policies))
			checkTable(t, e, tc.want)
			e.Table().Each(func(c matrix.Cell) bool {
				x, err := e.Explain(c.From, c.To, c.PortProtocol())
				if err != nil {
					t.Fatalf("Explain(%s): %v", c, err)
				}
				from, to := parseEndpoint(c.From), parseEndpoint(c.To)
				node := !from.external() && !to.external() && host(from) != host(to)
				if got := slices.Contains(x.ImplementationDefined, matrix.ImplementationDefinedNode); got != node {
					t.Fatalf("%s: implementation-defined %v, want Node marked %v", c, x.ImplementationDefined, node)
				}
				return true
			})
		})
	}
}
