package conformance_test

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// catalogue is every case of the conformance suite: first the upstream
// Kubernetes netpol e2e tests (test/e2e/network/netpol, v1.37), in their
// order, then what upstream does not test. Every step probes the whole
// matrix (every pod, the DNS-like pod and the external hosts, on 80 and 81
// over TCP, UDP and SCTP, and 53 on the DNS pod), so a case needs only its
// policies and label changes; its expect lists state the key assertions.
func catalogue() []testCase {
	return slices.Concat(upstreamCases(), additions(), nodeCases())
}

// Selectors used throughout.
var (
	podA = match("pod=a")
	podB = match("pod=b")
)

// denyIngress is a default-deny-ingress policy for every pod of ns.
func denyIngress(ns, name string) policyFn { return np(ns, name, all(), ingress()) }

// tcpIt names tests of the main (TCP) upstream context.
func tcpIt(its ...string) []upstreamTest {
	out := make([]upstreamTest, len(its))
	for i, it := range its {
		out[i] = upstreamTest{upstreamTCP, it}
	}
	return out
}

// protocolContext is the upstream context probing proto, and its label.
func protocolContext(proto corev1.Protocol) (context string, labels []string) {
	switch proto {
	case udp:
		return upstreamUDP, []string{generate.LabelUDP}
	case sctp:
		return upstreamSCTP, []string{generate.LabelSCTP}
	}
	return upstreamTCP, nil
}

// protocolPrefix prefixes the IDs of the UDP and SCTP contexts' cases.
func protocolPrefix(proto corev1.Protocol) string {
	if proto == tcp {
		return ""
	}
	return strings.ToLower(string(proto)) + "-"
}

// protocolNote ends the titles of the UDP and SCTP contexts' cases.
func protocolNote(proto corev1.Protocol) string {
	if proto == tcp {
		return ""
	}
	return " (" + string(proto) + ")"
}

// defaultDenyIngress is "should support a 'default-deny-ingress' policy" of
// the context probing proto.
func defaultDenyIngress(proto corev1.Protocol) testCase {
	context, labels := protocolContext(proto)
	p80 := matrix.PortProtocol{Port: 80, Protocol: proto}
	return testCase{
		id:       protocolPrefix(proto) + "default-deny-ingress",
		title:    "a default-deny-ingress policy isolates every pod of its namespace for ingress" + protocolNote(proto),
		upstream: []upstreamTest{{context, "should support a 'default-deny-ingress' policy"}},
		labels:   labels,
		steps: []step{{
			name:     "deny all ingress in x",
			policies: policies(denyIngress("x", "deny-ingress")),
			expect: []framework.Outcome{deny("x/b", "x/a", p80), deny("y/a", "x/a", p80), deny("ext1", "x/b", p80),
				allow("x/a", "y/a", p80), allow("y/a", "y/b", p80)},
		}},
	}
}

// portsFromNamespace is "should enforce policy based on Ports" of the context
// probing proto: x/a admits namespace y on port 81 of proto only.
func portsFromNamespace(proto corev1.Protocol) testCase {
	context, labels := protocolContext(proto)
	p80, p81 := matrix.PortProtocol{Port: 80, Protocol: proto}, matrix.PortProtocol{Port: 81, Protocol: proto}
	return testCase{
		id:       protocolPrefix(proto) + "ports",
		title:    "a rule with a peer and a port admits that peer on that port of that protocol only" + protocolNote(proto),
		upstream: []upstreamTest{{context, "should enforce policy based on Ports"}},
		labels:   labels,
		steps: []step{{
			name: "x/a admits namespace y on " + p81.String(),
			policies: policies(np("x", "allow-ingress-on-port-81-ns-y", podA,
				ingress(from(namespaces(named("y"))).on(port(81, proto))))),
			expect: []framework.Outcome{allow("y/a", "x/a", p81), allow("y/b", "x/a", p81), deny("y/a", "x/a", p80),
				deny("x/b", "x/a", p81), deny("z/a", "x/a", p81)},
		}},
	}
}

// podInOtherNamespace is "should enforce policy to allow traffic only from a
// pod in a different namespace based on PodSelector and NamespaceSelector" of
// the context probing proto.
func podInOtherNamespace(proto corev1.Protocol) testCase {
	context, labels := protocolContext(proto)
	p80 := matrix.PortProtocol{Port: 80, Protocol: proto}
	return testCase{
		id:    protocolPrefix(proto) + "pod-in-other-namespace",
		title: "a peer with a namespaceSelector and a podSelector admits the matching pods of the matching namespaces only" + protocolNote(proto),
		upstream: []upstreamTest{{context,
			"should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector"}},
		labels: labels,
		steps: []step{{
			name:     "x/a admits y/a",
			policies: policies(np("x", "allow-ns-y-pod-a", podA, ingress(from(podsIn(named("y"), podA))))),
			expect: []framework.Outcome{allow("y/a", "x/a", p80), deny("y/b", "x/a", p80), deny("z/a", "x/a", p80),
				deny("x/b", "x/a", p80)},
		}},
	}
}

// upstreamCases reproduce every connectivity test of the upstream netpol
// e2e, and its endPort API test.
func upstreamCases() []testCase {
	return []testCase{
		defaultDenyIngress(tcp),
		{
			id: "default-deny-all", title: "a default-deny policy for both directions isolates its namespace both ways",
			upstream: tcpIt("should support a 'default-deny-all' policy"),
			steps: []step{{
				name:     "deny all ingress and egress in x",
				policies: policies(np("x", "deny-all", all(), ingress(), egress())),
				expect: []framework.Outcome{deny("x/a", "x/b", tcp80), deny("y/a", "x/a", tcp80), deny("x/a", "y/a", tcp80),
					deny("x/a", "ext1", tcp80), allow("y/a", "y/b", tcp80)},
			}},
		},
		{
			id: "pod-selector-same-namespace", title: "a podSelector peer admits the matching pods of the policy's namespace only",
			upstream: tcpIt("should enforce policy to allow traffic from pods within server namespace based on PodSelector"),
			steps: []step{{
				name:     "x/a admits x/b",
				policies: policies(np("x", "x-a-allows-x-b", podA, ingress(from(pods(podB))))),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), deny("x/c", "x/a", tcp80), deny("y/b", "x/a", tcp80),
					allow("x/b", "x/c", tcp80)},
			}},
		},
		{
			id: "allow-ingress-to-target", title: "a policy admitting everything to one pod opens it inside a default-deny namespace",
			upstream: tcpIt("should enforce policy to allow ingress traffic for a target"),
			steps: []step{{
				name: "deny all ingress in x, admit every pod to x/a",
				policies: policies(denyIngress("x", "deny-all"),
					np("x", "allow-all-to-a", podA, ingress(from(podsIn(all(), all()))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("x/b", "x/a", tcp80), deny("x/a", "x/b", tcp80),
					deny("y/a", "x/b", tcp80)},
			}},
		},
		{
			id: "allow-from-all-namespaces", title: "an empty namespaceSelector admits the pods of every namespace, and no external host",
			upstream: tcpIt("should enforce policy to allow ingress traffic from pods in all namespaces"),
			steps: []step{{
				name:     "x/a admits every namespace",
				policies: policies(np("x", "allow-from-another-ns", podA, ingress(from(namespaces(all()))))),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), allow("y/a", "x/a", tcp80), allow("z/a", "x/a", tcp80),
					allow(dnsPod, "x/a", tcp80), deny("ext1", "x/a", tcp80)},
			}},
		},
		{
			id: "namespace-selector-by-name", title: "a namespaceSelector on kubernetes.io/metadata.name admits that namespace only",
			upstream: tcpIt("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
				"should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label"),
			steps: []step{{
				name: "x/a admits namespace y",
				policies: policies(np("x", "allow-client-a-via-ns-selector", podA,
					ingress(from(namespaces(named("y")))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("y/c", "x/a", tcp81), deny("x/b", "x/a", tcp80),
					deny("z/a", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-selector-in", title: "a podSelector with matchExpressions In admits the listed pods",
			upstream: tcpIt("should enforce policy based on PodSelector with MatchExpressions"),
			steps: []step{{
				name:     "x/a admits pod In [b]",
				policies: policies(np("x", "x-a-allows-x-b", podA, ingress(from(pods(in("pod", "b")))))),
				expect:   []framework.Outcome{allow("x/b", "x/a", tcp80), deny("x/c", "x/a", tcp80), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "namespace-selector-in", title: "a namespaceSelector with matchExpressions In admits the listed namespaces",
			upstream: tcpIt("should enforce policy based on NamespaceSelector with MatchExpressions"),
			steps: []step{{
				name:     "x/a admits metadata.name In [y]",
				policies: policies(np("x", "allow-ns-y-match-selector", podA, ingress(from(namespaces(nameIn("y")))))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), deny("x/b", "x/a", tcp80), deny("z/a", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-or-namespace-selector", title: "separate peers are ORed: pods of other namespaces, or x/b",
			upstream: tcpIt("should enforce policy based on PodSelector or NamespaceSelector"),
			steps: []step{{
				name: "x/a admits namespaces NotIn [x], or pod=b",
				policies: policies(np("x", "allow-ns-y-match-selector", podA,
					ingress(from(namespaces(nameNotIn("x")), pods(podB))))),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), allow("y/a", "x/a", tcp80), allow("z/c", "x/a", tcp80),
					deny("x/c", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-and-namespace-selector", title: "a namespaceSelector and a podSelector in one peer are ANDed",
			upstream: tcpIt("should enforce policy based on PodSelector and NamespaceSelector"),
			steps: []step{{
				name: "x/a admits pod=b in namespaces NotIn [x]",
				policies: policies(np("x", "allow-ns-y-podselector-and-nsselector", podA,
					ingress(from(podsIn(nameNotIn("x"), podB))))),
				expect: []framework.Outcome{allow("y/b", "x/a", tcp80), allow("z/b", "x/a", tcp80), deny("x/b", "x/a", tcp80),
					deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "multiple-pod-and-namespace-selectors", title: "matchExpressions on both selectors of one peer: pods b and c of other namespaces",
			upstream: tcpIt("should enforce policy based on Multiple PodSelectors and NamespaceSelectors"),
			steps: []step{{
				name: "x/a admits pod In [b, c] in namespaces NotIn [x]",
				policies: policies(np("x", "allow-ns-y-z-pod-b-c", podA,
					ingress(from(podsIn(nameNotIn("x"), in("pod", "b", "c")))))),
				expect: []framework.Outcome{allow("y/b", "x/a", tcp80), allow("y/c", "x/a", tcp80), allow("z/c", "x/a", tcp80),
					deny("y/a", "x/a", tcp80), deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "any-pod-selectors", title: "several podSelector peers admit the pods of any of them",
			upstream: tcpIt("should enforce policy based on any PodSelectors"),
			steps: []step{{
				name:     "x/a admits pod=b or pod=c",
				policies: policies(np("x", "allow-ns-x-pod-b-c", podA, ingress(from(pods(podB), pods(match("pod=c")))))),
				expect:   []framework.Outcome{allow("x/b", "x/a", tcp80), allow("x/c", "x/a", tcp80), deny("y/b", "x/a", tcp80)},
			}},
		},
		podInOtherNamespace(tcp),
		portsFromNamespace(tcp),
		{
			id: "stacked-policies", title: "a second policy selecting the same pod adds the port the first one left closed",
			upstream: tcpIt("should enforce multiple, stacked policies with overlapping podSelectors"),
			steps: []step{{
				name: "x/a admits namespace y on 81",
				policies: policies(np("x", "allow-client-a-via-ns-selector", podA,
					ingress(from(namespaces(named("y"))).on(port(81, tcp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp81), deny("y/a", "x/a", tcp80), deny("z/a", "x/a", tcp81)},
			}, {
				name: "another policy admits namespace y to x/a on 80",
				policies: policies(
					np("x", "allow-client-a-via-ns-selector", podA, ingress(from(namespaces(named("y"))).on(port(81, tcp)))),
					np("x", "allow-client-a-via-ns-selector-80", podA, ingress(from(namespaces(named("y"))).on(port(80, tcp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("y/b", "x/a", tcp81), deny("z/a", "x/a", tcp80),
					deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "allow-all", title: "an ingress rule {} admits everything, external hosts included",
			upstream: tcpIt("should support allow-all policy"),
			steps: []step{{
				name:     "every pod of x admits everything",
				policies: policies(np("x", "allow-all", match(), ingress(anything()))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("y/a", "x/a", tcp81), allow("x/b", "x/a", udp81),
					allow("ext1", "x/a", sctp80)},
			}},
		},
		{
			id: "ingress-named-port", title: "a named port admits the container port of that name only",
			upstream: tcpIt("should allow ingress access on one named port"),
			steps: []step{{
				name:     "every pod of x admits anyone on serve-81-tcp",
				policies: policies(np("x", "allow-all", match(), ingress(onPorts(namedPort("serve-81-tcp"))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp81), allow("x/b", "x/a", tcp81), deny("y/a", "x/a", tcp80),
					deny("y/a", "x/a", udp81)},
			}},
		},
		{
			id: "ingress-named-port-from-namespace", title: "a named port with a namespace peer: namespace y on serve-80-tcp only",
			upstream: tcpIt("should allow ingress access from namespace on one named port"),
			steps: []step{{
				name: "x/a admits namespace y on serve-80-tcp",
				policies: policies(np("x", "allow-client-a-via-ns-selector-80", podA,
					ingress(from(namespaces(named("y"))).on(namedPortOf("serve-80-tcp", tcp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), deny("y/a", "x/a", tcp81), deny("z/a", "x/a", tcp80),
					deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "egress-named-port", title: "an egress named port is resolved on each destination pod; external hosts have no named ports",
			upstream: tcpIt("should allow egress access on one named port"),
			steps: []step{{
				name:     "pods of x may send to serve-80-tcp only",
				policies: policies(np("x", "allow-egress", match(), egress(onPorts(namedPort("serve-80-tcp"))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp80), deny("x/a", "y/a", tcp81), allow("y/a", "x/a", tcp81),
					deny("x/a", "ext1", tcp80)},
			}},
		},
		{
			id: "nonexistent-named-port", title: "a named port no container declares admits nothing, and still isolates",
			upstream: tcpIt("should not allow all ports if it cannot limit to the requested port"),
			steps: []step{{
				name:     "x/a admits anyone on no-such-port",
				policies: policies(np("x", "allow-ingress-on-nonexistent-port", podA, ingress(onPorts(namedPortOf("no-such-port", tcp))))),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp80), deny("y/a", "x/a", tcp81), deny("x/b", "x/a", udp80)},
			}},
		},
		{
			id: "named-port-wrong-protocol-with-peers", title: "a named port declared for another protocol admits nothing from the rule's peers, and still isolates",
			steps: []step{{
				name:     "x/a admits x/b on serve-80-tcp over UDP, which no container declares",
				policies: policies(np("x", "named-port-wrong-protocol", podA, ingress(from(pods(podB)).on(namedPortOf("serve-80-tcp", udp))))),
				expect:   []framework.Outcome{deny("x/b", "x/a", tcp80), deny("x/b", "x/a", udp80), deny("x/b", "x/a", tcp81), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "policy-update", title: "updating an allow-all policy to deny-all closes its namespace",
			upstream: tcpIt("should enforce updated policy"),
			steps: []step{{
				name:     "allow all ingress in x",
				policies: policies(np("x", "allow-all-mutate-to-deny-all", match(), ingress(anything()))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp81)},
			}, {
				name:     "the same policy, updated to deny all ingress",
				policies: policies(np("x", "allow-all-mutate-to-deny-all", match(), ingress())),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp81), allow("x/a", "y/a", tcp81)},
			}},
		},
		{
			id: "namespace-relabel-admits", title: "a namespace gaining the label a namespaceSelector wants is admitted",
			upstream: tcpIt("should allow ingress access from updated namespace"),
			steps: []step{{
				name:     "x/a admits namespaces labelled ns2=updated: none yet",
				policies: policies(np("x", "allow-client-a-via-ns-selector", podA, ingress(from(namespaces(match("ns2=updated")))))),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp80)},
			}, {
				name:   "namespace y gains ns2=updated",
				labels: map[string]map[string]string{"y": nsLabels("y", "ns2=updated")},
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), deny("z/a", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-relabel-admits", title: "a pod gaining the labels a podSelector wants is admitted",
			upstream: tcpIt("should allow ingress access from updated pod"),
			steps: []step{{
				name:     "x/a admits pod=b,pod2=updated: none yet",
				policies: policies(np("x", "allow-client-a-via-pod-selector", podA, ingress(from(pods(match("pod=b", "pod2=updated")))))),
				expect:   []framework.Outcome{deny("x/b", "x/a", tcp80)},
			}, {
				name:   "x/b gains pod2=updated",
				labels: map[string]map[string]string{"x/b": podLabels("x/b", "pod2=updated")},
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), deny("x/c", "x/a", tcp80)},
			}},
		},
		{
			id: "deny-from-other-namespaces", title: "an empty podSelector peer admits the policy's own namespace only",
			upstream: tcpIt("should deny ingress from pods on other namespaces"),
			steps: []step{{
				name:     "every pod of x admits every pod of x",
				policies: policies(np("x", "deny-empty-policy", all(), ingress(from(pods(all()))))),
				expect:   []framework.Outcome{allow("x/b", "x/a", tcp80), deny("y/a", "x/a", tcp80), deny("z/a", "x/b", tcp80)},
			}},
		},
		{
			id: "pod-relabel-isolates", title: "a pod gaining the label of a deny policy's podSelector becomes isolated",
			upstream: tcpIt("should deny ingress access to updated pod"),
			steps: []step{{
				name:     "deny ingress to target=isolated: no pod yet",
				policies: policies(np("x", "deny-ingress-via-label-selector", match("target=isolated"), ingress())),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80)},
			}, {
				name:   "x/a gains target=isolated",
				labels: map[string]map[string]string{"x/a": podLabels("x/a", "target=isolated")},
				expect: []framework.Outcome{deny("y/a", "x/a", tcp80), allow("y/a", "x/b", tcp80)},
			}},
		},
		{
			id: "deny-egress-pod", title: "an egress policy without rules isolates the selected pod's egress only",
			upstream: tcpIt("should deny egress from pods based on PodSelector"),
			steps: []step{{
				name:     "deny all egress from x/a",
				policies: policies(np("x", "deny-egress-pod-a", podA, egress())),
				expect: []framework.Outcome{deny("x/a", "x/b", tcp80), deny("x/a", "y/a", tcp80), allow("x/b", "x/a", tcp80),
					allow("x/b", "y/a", tcp80)},
			}},
		},
		{
			id: "deny-egress-namespace", title: "an egress policy without rules for every pod isolates the namespace's egress",
			upstream: tcpIt("should deny egress from all pods in a namespace"),
			steps: []step{{
				name:     "deny all egress from x",
				policies: policies(np("x", "deny-egress-ns-x", all(), egress())),
				expect: []framework.Outcome{deny("x/a", "y/a", tcp80), deny("x/b", "x/a", tcp80), deny("x/c", dnsPod, dns53u),
					allow("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "ingress-and-egress-together", title: "one policy with ingress and egress rules restricts both directions of its pod",
			upstream: tcpIt("should work with Ingress, Egress specified together"),
			steps: []step{{
				name: "x/a admits x/b, and may send to port 80 only",
				policies: policies(np("x", "allow-client-a-via-pod-selector", podA,
					ingress(from(pods(podB))), egress(onPorts(portNumber(80))),
					policyTypes(networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress))),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), allow("x/b", "x/a", tcp81), deny("x/c", "x/a", tcp80),
					allow("x/a", "y/a", tcp80), deny("x/a", "y/a", tcp81)},
			}},
		},
		{
			id: "egress-denies-despite-ingress", title: "egress at the client denies a connection the server's ingress admits",
			upstream: tcpIt("should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)"),
			steps: []step{{
				name: "x/a may send to y/a only; y/a and y/b admit x/a only",
				policies: policies(
					np("x", "allow-to-ns-y-pod-a", podA, egress(to(podsIn(named("y"), podA)))),
					np("y", "allow-from-xa-on-ya-match-selector", podA, ingress(from(podsIn(named("x"), podA)))),
					np("y", "allow-from-xa-on-yb-match-selector", podB, ingress(from(podsIn(named("x"), podA))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp80), deny("x/a", "y/b", tcp80), deny("x/b", "y/b", tcp80),
					deny("x/a", "x/b", tcp80)},
			}},
		},
		{
			id: "egress-pod-in-other-namespace", title: "an egress peer with both selectors allows the matching pods of the matching namespaces only",
			upstream: tcpIt("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector"),
			steps: []step{{
				name:     "x/a may send to y/a only",
				policies: policies(np("x", "allow-to-ns-y-pod-a", podA, egress(to(podsIn(named("y"), podA))))),
				expect:   []framework.Outcome{allow("x/a", "y/a", tcp80), deny("x/a", "y/b", tcp80), deny("x/a", "x/b", tcp80)},
			}},
		},
		{
			id: "protocol-only-ingress-tcp", title: "a port with a protocol and no number admits every port of that protocol",
			upstream: tcpIt("should enforce ingress policy allowing any port traffic to a server on a specific protocol"),
			steps: []step{{
				name:     "x/a admits anyone on TCP",
				policies: policies(np("x", "allow-ingress-by-proto", podA, ingress(onPorts(protocolOnly(tcp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("y/a", "x/a", tcp81), deny("y/a", "x/a", udp80),
					deny("y/a", "x/a", sctp81)},
			}},
		},
		{
			id: "ingress-allow-all-precedence", title: "adding an allow-all ingress policy opens what a port-80 policy left closed",
			upstream: tcpIt("should enforce multiple ingress policies with ingress allow-all policy taking precedence"),
			steps: []step{{
				name:     "pods of x admit port 80 only",
				policies: policies(np("x", "allow-ingress-port-80", match(), ingress(onPorts(portNumber(80))))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), deny("y/a", "x/a", tcp81)},
			}, {
				name: "add a policy admitting everything",
				policies: policies(np("x", "allow-ingress-port-80", match(), ingress(onPorts(portNumber(80)))),
					np("x", "allow-ingress", match(), ingress(anything()))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp81), allow("y/a", "x/a", udp81)},
			}},
		},
		{
			id: "egress-allow-all-precedence", title: "adding an allow-all egress policy opens what a port-80 policy left closed",
			upstream: tcpIt("should enforce multiple egress policies with egress allow-all policy taking precedence"),
			steps: []step{{
				name:     "pods of x may send to port 80 only",
				policies: policies(np("x", "allow-egress-port-80", match(), egress(onPorts(portNumber(80))))),
				expect:   []framework.Outcome{allow("x/a", "y/a", tcp80), deny("x/a", "y/a", tcp81)},
			}, {
				name: "add a policy allowing every egress",
				policies: policies(np("x", "allow-egress-port-80", match(), egress(onPorts(portNumber(80)))),
					np("x", "allow-egress", match(), egress(anything()))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp81), allow("x/a", "ext2", udp81)},
			}},
		},
		{
			id: "policy-deletion", title: "deleting a deny-all policy restores every connection",
			upstream: tcpIt("should stop enforcing policies after they are deleted"),
			steps: []step{{
				name:     "deny all ingress and egress in x",
				policies: policies(np("x", "deny-all", all(), ingress(), egress())),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp80), deny("x/a", "y/a", tcp80)},
			}, {
				name:     "delete it",
				policies: policies(),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), allow("x/a", "y/a", tcp80)},
			}},
		},
		{
			id: "egress-ipblock-pod", title: "an egress ipBlock of one pod's IP allows that pod only",
			upstream: tcpIt("should allow egress access to server in CIDR block"),
			steps: []step{{
				name:     "x/a may send to y/b's IP/32 only",
				policies: policies(np("x", "allow-client-a-via-cidr-egress-rule", podA, egress(to(ipBlock(podHost("y/b")))))),
				expect:   []framework.Outcome{allow("x/a", "y/b", tcp80), deny("x/a", "y/a", tcp80), deny("x/a", "ext1", tcp80)},
			}},
		},
		{
			id: "egress-ipblock-except-pod", title: "an egress ipBlock except excludes one pod's IP from a large block",
			upstream: tcpIt("should enforce except clause while egress access to server in CIDR block"),
			steps: []step{{
				name: "x/a may send to the /4 around x/b except x/b",
				policies: policies(np("x", "allow-client-a-via-cidr-egress-rule", podA,
					egress(to(ipBlock(podSlash4("x/b"), podHost("x/b")))))),
				expect: []framework.Outcome{deny("x/a", "x/b", tcp80), allow("x/a", "x/c", tcp80), deny("x/a", "ext1", tcp80)},
			}},
		},
		{
			id: "ipblock-cidr-and-except-overlap", title: "an IP in one policy's except is allowed by another policy's ipBlock",
			upstream: tcpIt("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed"),
			steps: []step{{
				name: "x/a may send to the /4 around x/b except x/b",
				policies: policies(np("x", "allow-client-a-via-cidr-egress-rule", podA,
					egress(to(ipBlock(podSlash4("x/b"), podHost("x/b")))))),
				expect: []framework.Outcome{deny("x/a", "x/b", tcp80), allow("x/a", "x/c", tcp80)},
			}, {
				name: "a second policy allows x/b's IP/32",
				policies: policies(
					np("x", "allow-client-a-via-cidr-egress-rule", podA, egress(to(ipBlock(podSlash4("x/b"), podHost("x/b"))))),
					np("x", "allow-client-a-to-x-b", podA, egress(to(ipBlock(podHost("x/b")))))),
				expect: []framework.Outcome{allow("x/a", "x/b", tcp80), allow("x/a", "x/c", tcp80)},
			}, {
				name: "as upstream: the first policy is replaced by x/b's IP/32 alone",
				policies: policies(np("x", "allow-client-a-via-cidr-egress-rule", podA,
					egress(to(ipBlock(podHost("x/b")))))),
				expect: []framework.Outcome{allow("x/a", "x/b", tcp80), deny("x/a", "x/c", tcp80)},
			}},
		},
		{
			id: "ingress-egress-independent", title: "ingress and egress of one pod are controlled independently",
			upstream: tcpIt("should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector"),
			steps: []step{{
				name:     "x/a may send anywhere",
				policies: policies(np("x", "allow-egress-for-target", podA, egress(anything()))),
				expect:   []framework.Outcome{allow("x/a", "x/b", tcp80), allow("x/b", "x/a", tcp80)},
			}, {
				name: "add a policy denying all ingress to x/a",
				policies: policies(np("x", "allow-egress-for-target", podA, egress(anything())),
					np("x", "deny-ingress-via-label-selector", podA, ingress())),
				expect: []framework.Outcome{allow("x/a", "x/b", tcp80), deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "sctp-not-tcp", title: "a rule admitting SCTP on a port does not admit TCP on it",
			upstream: tcpIt("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"),
			steps: []step{{
				name: "deny ingress in x; x/a admits SCTP 81",
				policies: policies(denyIngress("x", "deny-ingress"),
					np("x", "allow-only-sctp-ingress-on-port-81", podA, ingress(onPorts(port(81, sctp))))),
				expect: []framework.Outcome{deny("y/a", "x/a", tcp81), allow("y/a", "x/a", sctp81), deny("y/a", "x/b", sctp81)},
			}},
		},
		{
			id: "sctp-policy-isolates", title: "a policy admitting SCTP only isolates its pod for TCP",
			upstream: tcpIt("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP"),
			steps: []step{{
				name:     "x/a admits SCTP 80",
				policies: policies(np("x", "allow-only-sctp-ingress-on-port-80", podA, ingress(onPorts(port(80, sctp))))),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp81), allow("y/a", "x/a", sctp80), deny("y/a", "x/a", sctp81)},
			}},
		},
		{
			id: "udp-not-tcp", title: "a policy admitting UDP only does not admit TCP",
			upstream: tcpIt("should not allow access by TCP when a policy specifies only UDP"),
			steps: []step{{
				name:     "x/a admits UDP 81",
				policies: policies(np("x", "allow-only-udp-ingress-on-port-81", podA, ingress(onPorts(port(81, udp))))),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp81), allow("y/a", "x/a", udp81), deny("y/a", "x/a", udp80)},
			}},
		},
		{
			id: "egress-namespace-name-not-in", title: "an egress namespaceSelector NotIn on kubernetes.io/metadata.name excludes that namespace",
			upstream: tcpIt("should enforce policy based on NamespaceSelector with MatchExpressions using default ns label"),
			steps: []step{{
				name:     "x/a may send to namespaces NotIn [y]",
				policies: policies(np("x", "allow-ns-y-match-selector-for-immutable-ns-label", podA, egress(to(namespaces(nameNotIn("y")))))),
				expect: []framework.Outcome{deny("x/a", "y/a", tcp80), allow("x/a", "z/a", tcp80), allow("x/a", "x/b", tcp80),
					allow("x/a", dnsPod, dns53u), deny("x/a", "ext1", tcp80)},
			}},
		},
		defaultDenyIngress(udp),
		portsFromNamespace(udp),
		podInOtherNamespace(udp),
		defaultDenyIngress(sctp),
		portsFromNamespace(sctp),
		podInOtherNamespace(sctp),
		{
			id: "endport-validation", title: "endPort ranges are enforced; endPort without port, with a named port or below port is rejected",
			upstream: []upstreamTest{{upstreamAPI, "should support creating NetworkPolicy API with endport field"}},
			steps: []step{{
				name: "x/a may send to TCP 81-81 and UDP 70-80",
				policies: policies(np("x", "egress-endport", podA,
					egress(onPorts(portRange(81, 81, tcp), portRange(70, 80, udp))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp81), deny("x/a", "y/a", tcp80), allow("x/a", "y/a", udp80),
					deny("x/a", "y/a", udp81)},
			}, {
				name:     "endPort without port",
				manifest: endPortManifest("- endPort: 20000"),
				rejected: "may not be specified when `port` is not specified",
			}, {
				name:     "endPort with a named port",
				manifest: endPortManifest("- {port: serve-80-tcp, endPort: 20000}"),
				rejected: "may not be specified when `port` is non-numeric",
			}, {
				name:     "endPort below port",
				manifest: endPortManifest("- {port: 30000, endPort: 20000}"),
				rejected: "must be greater than or equal to `port`",
			}},
		},
	}
}

// endPortManifest is an egress policy for x/a with the given ports list.
func endPortManifest(ports string) string {
	return `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: endport-invalid
  namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - ports:
    ` + ports + "\n"
}

// additions covers what upstream does not test.
func additions() []testCase {
	dns := podsIn(named("kube-system"), match("k8s-app=netpolcheck-dns"))
	clientB := map[string]map[string]string{"x/b": podLabels("x/b", "role=client")}
	return []testCase{
		{
			id: "endport-tcp", title: "an ingress endPort range admits the TCP ports inside it only",
			steps: []step{{
				name:     "x/a admits TCP 81-90",
				policies: policies(np("x", "ingress-endport-tcp", podA, ingress(onPorts(portRange(81, 90, tcp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp81), deny("y/a", "x/a", tcp80), deny("y/a", "x/a", udp81),
					allow("ext1", "x/a", tcp81)},
			}},
		},
		{
			id: "endport-udp", title: "an egress endPort range allows the UDP ports inside it only, to pods and external hosts",
			steps: []step{{
				name:     "x/a may send to UDP 79-80",
				policies: policies(np("x", "egress-endport-udp", podA, egress(onPorts(portRange(79, 80, udp))))),
				expect: []framework.Outcome{allow("x/a", "y/a", udp80), deny("x/a", "y/a", udp81), deny("x/a", "y/a", tcp80),
					allow("x/a", "ext1", udp80), deny("x/a", dnsPod, dns53u)},
			}},
		},
		{
			id: "endport-sctp", title: "an endPort range with a namespace peer admits SCTP 80-81 from namespace y",
			steps: []step{{
				name: "pods of x admit namespace y on SCTP 80-81",
				policies: policies(np("x", "ingress-endport-sctp", all(),
					ingress(from(namespaces(named("y"))).on(portRange(80, 81, sctp))))),
				expect: []framework.Outcome{allow("y/a", "x/b", sctp80), allow("y/a", "x/b", sctp81), deny("y/a", "x/b", tcp80),
					deny("z/a", "x/b", sctp80)},
			}},
		},
		{
			id: "ipblock-external-egress", title: "an egress ipBlock with except allows one external host and not the other",
			steps: []step{{
				name: "x/a may send to 192.0.2.0/24 except 192.0.2.11/32",
				policies: policies(np("x", "egress-to-ext1", podA,
					egress(to(ipBlock(cidr("192.0.2.0/24"), cidr("192.0.2.11/32")))))),
				expect: []framework.Outcome{allow("x/a", "ext1", tcp80), allow("x/a", "ext1", sctp81), deny("x/a", "ext2", tcp80),
					deny("x/a", "y/a", tcp80), deny("x/a", dnsPod, dns53u)},
			}},
		},
		{
			id: "ipblock-external-ingress", title: "an ingress ipBlock with except admits one external host and not the other",
			steps: []step{{
				name: "x/a admits 192.0.2.0/24 except 192.0.2.11/32",
				policies: policies(np("x", "ingress-from-ext1", podA,
					ingress(from(ipBlock(cidr("192.0.2.0/24"), cidr("192.0.2.11/32")))))),
				expect: []framework.Outcome{allow("ext1", "x/a", tcp80), allow("ext1", "x/a", udp81), deny("ext2", "x/a", tcp80),
					deny("y/a", "x/a", tcp80), allow("ext2", "x/b", tcp80)},
			}},
		},
		{
			id: "ipblock-peers-except-overlap", title: "one ipBlock peer admits what another peer of the same rule excepts: peers are alternatives",
			steps: []step{{
				name: "x/a admits UDP from 192.0.2.0/24, or from 0.0.0.0/0 except 192.0.2.0/24",
				policies: policies(np("x", "two-blocks", podA,
					ingress(from(ipBlock(cidr("192.0.2.0/24")), ipBlock(cidr("0.0.0.0/0"), cidr("192.0.2.0/24"))).on(protocolOnly(udp))))),
				expect: []framework.Outcome{allow("ext1", "x/a", udp80), allow("ext2", "x/a", udp81), deny("ext1", "x/a", tcp80)},
			}},
		},
		{
			id: "ipblock-pod-ingress-except", title: "an ingress ipBlock over the pods' addresses with one pod's IP excepted",
			steps: []step{{
				name: "x/a admits the /4 around y/b except y/b",
				policies: policies(np("x", "ingress-from-pods-but-y-b", podA,
					ingress(from(ipBlock(podSlash4("y/b"), podHost("y/b")))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), deny("y/b", "x/a", tcp80), deny("ext1", "x/a", tcp80)},
			}},
		},
		{
			id: "ipblock-everything-except-pods", title: "egress to 0.0.0.0/0 except the pods' block reaches external hosts only",
			steps: []step{{
				name: "x/a may send to 0.0.0.0/0 except the /4 around x/b",
				policies: policies(np("x", "egress-outside-cluster", podA,
					egress(to(ipBlock(cidr("0.0.0.0/0"), podSlash4("x/b")))))),
				expect: []framework.Outcome{allow("x/a", "ext1", tcp80), allow("x/a", "ext2", udp81), deny("x/a", "y/a", tcp80),
					deny("x/a", dnsPod, dns53u)},
			}},
		},
		{
			id: "dns-egress", title: "egress restricted to the kube-system DNS pod on UDP and TCP 53",
			steps: []step{{
				name:     "pods of x may send to the DNS pod on 53/UDP and 53/TCP only",
				policies: policies(np("x", "allow-dns", all(), egress(to(dns).on(port(53, udp), port(53, tcp))))),
				expect: []framework.Outcome{allow("x/a", dnsPod, dns53u), allow("x/b", dnsPod, dns53t), deny("x/a", "y/a", tcp80),
					deny("x/a", "ext1", udp80), allow("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "dns-egress-named-ports", title: "egress to the DNS pod by the named ports dns-udp and dns-tcp",
			steps: []step{{
				name: "pods of x may send to the DNS pod on dns-udp and dns-tcp only",
				policies: policies(np("x", "allow-dns-named", all(),
					egress(to(dns).on(namedPortOf("dns-udp", udp), namedPortOf("dns-tcp", tcp))))),
				expect: []framework.Outcome{allow("x/a", dnsPod, dns53u), allow("x/c", dnsPod, dns53t), deny("x/a", "y/a", udp80),
					deny("x/a", "x/b", tcp80)},
			}},
		},
		{
			id: "egress-named-port-protocol", title: "an egress named port matches only with its own protocol",
			steps: []step{{
				name: "x/a may send to serve-80-udp as TCP (nothing) and serve-81-udp as UDP",
				policies: policies(np("x", "egress-named-ports", podA,
					egress(onPorts(namedPort("serve-80-udp"), namedPortOf("serve-81-udp", udp))))),
				expect: []framework.Outcome{deny("x/a", "y/a", udp80), deny("x/a", "y/a", tcp80), allow("x/a", "y/a", udp81),
					deny("x/a", "ext1", udp81)},
			}},
		},
		{
			id: "ingress-named-ports-udp-sctp", title: "ingress named ports of UDP and SCTP containers",
			steps: []step{{
				name: "x/a admits namespace y on serve-80-udp and serve-81-sctp",
				policies: policies(np("x", "ingress-named-udp-sctp", podA,
					ingress(from(namespaces(named("y"))).on(namedPortOf("serve-80-udp", udp), namedPortOf("serve-81-sctp", sctp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", udp80), allow("y/b", "x/a", sctp81), deny("y/a", "x/a", udp81),
					deny("y/a", "x/a", sctp80), deny("y/a", "x/a", tcp80), deny("z/a", "x/a", udp80)},
			}},
		},
		{
			id: "policytypes-default-egress", title: "egress rules without policyTypes isolate ingress too (defaulted to Ingress, Egress)",
			steps: []step{{
				name: "x/a may send to namespace y; policyTypes left to the API server",
				policies: policies(np("x", "egress-rules-only", podA,
					egress(to(namespaces(named("y")))), withoutPolicyTypes())),
				expect: []framework.Outcome{deny("y/a", "x/a", tcp80), deny("x/b", "x/a", tcp80), allow("x/a", "y/b", tcp80),
					deny("x/a", "z/a", tcp80)},
			}},
		},
		{
			id: "policytypes-default-ingress", title: "ingress rules without policyTypes leave egress open (defaulted to Ingress)",
			steps: []step{{
				name: "x/a admits x/b; policyTypes left to the API server",
				policies: policies(np("x", "ingress-rules-only", podA,
					ingress(from(pods(podB))), withoutPolicyTypes())),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), deny("x/c", "x/a", tcp80), allow("x/a", "y/a", tcp80),
					allow("x/a", "ext1", tcp80)},
			}},
		},
		{
			id: "policytypes-egress-ignores-ingress-rules", title: "with policyTypes [Egress], the policy's ingress rules are ignored",
			steps: []step{{
				name: "x/a: ingress rules admitting x/b, policyTypes [Egress]",
				policies: policies(np("x", "egress-type-only", podA,
					ingress(from(pods(podB))), policyTypes(networkingv1.PolicyTypeEgress))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), allow("x/c", "x/a", tcp80), deny("x/a", "x/b", tcp80)},
			}},
		},
		{
			id: "pod-selector-not-in", title: "a podSelector with matchExpressions NotIn admits the other pods of the namespace",
			steps: []step{{
				name:     "x/a admits pod NotIn [b]",
				policies: policies(np("x", "allow-not-b", podA, ingress(from(pods(notIn("pod", "b")))))),
				expect:   []framework.Outcome{allow("x/c", "x/a", tcp80), deny("x/b", "x/a", tcp80), deny("y/c", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-selector-exists", title: "a podSelector with matchExpressions Exists admits the pods carrying the key",
			steps: []step{{
				name:   "x/b carries role=client, y/b role=server; x/a admits role Exists in every namespace",
				labels: map[string]map[string]string{"x/b": podLabels("x/b", "role=client"), "y/b": podLabels("y/b", "role=server")},
				policies: policies(np("x", "allow-role-exists", podA,
					ingress(from(podsIn(all(), exists("role")))))),
				expect: []framework.Outcome{allow("x/b", "x/a", tcp80), allow("y/b", "x/a", tcp80), deny("x/c", "x/a", tcp80),
					deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-selector-does-not-exist", title: "a podSelector with matchExpressions DoesNotExist admits the pods without the key",
			steps: []step{{
				name:     "x/b carries role=client; x/a admits role DoesNotExist",
				labels:   clientB,
				policies: policies(np("x", "allow-role-missing", podA, ingress(from(pods(doesNotExist("role")))))),
				expect:   []framework.Outcome{allow("x/c", "x/a", tcp80), deny("x/b", "x/a", tcp80), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "namespace-selector-exists", title: "a namespaceSelector with matchExpressions Exists admits the namespaces carrying the key",
			steps: []step{{
				name:     "namespace y carries team=blue; x/a admits team Exists",
				labels:   map[string]map[string]string{"y": nsLabels("y", "team=blue")},
				policies: policies(np("x", "allow-team-exists", podA, ingress(from(namespaces(exists("team")))))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), deny("z/a", "x/a", tcp80), deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "namespace-selector-does-not-exist", title: "an egress namespaceSelector with matchExpressions DoesNotExist allows the namespaces without the key",
			steps: []step{{
				name:     "namespace y carries team=blue; x/a may send to team DoesNotExist",
				labels:   map[string]map[string]string{"y": nsLabels("y", "team=blue")},
				policies: policies(np("x", "allow-to-team-missing", podA, egress(to(namespaces(doesNotExist("team")))))),
				expect: []framework.Outcome{deny("x/a", "y/a", tcp80), allow("x/a", "z/a", tcp80), allow("x/a", "x/b", tcp80),
					allow("x/a", dnsPod, dns53u), deny("x/a", "ext1", tcp80)},
			}},
		},
		{
			id: "pod-relabel-removes-access", title: "a pod losing the label a podSelector wants loses access; a pod gaining it gets access",
			steps: []step{{
				name:     "x/b carries role=client; x/a admits role=client",
				labels:   clientB,
				policies: policies(np("x", "allow-clients", podA, ingress(from(pods(match("role=client")))))),
				expect:   []framework.Outcome{allow("x/b", "x/a", tcp80), deny("x/c", "x/a", tcp80)},
			}, {
				name:   "x/b loses role=client",
				labels: map[string]map[string]string{"x/b": podLabels("x/b")},
				expect: []framework.Outcome{deny("x/b", "x/a", tcp80)},
			}, {
				name:   "x/c gains role=client",
				labels: map[string]map[string]string{"x/c": podLabels("x/c", "role=client")},
				expect: []framework.Outcome{allow("x/c", "x/a", tcp80), deny("x/b", "x/a", tcp80)},
			}},
		},
		{
			id: "pod-relabel-unisolates", title: "a pod losing the label of a deny policy's podSelector is open again",
			steps: []step{{
				name:     "x/a carries target=isolated; deny ingress to target=isolated",
				labels:   map[string]map[string]string{"x/a": podLabels("x/a", "target=isolated")},
				policies: policies(np("x", "deny-isolated", match("target=isolated"), ingress())),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp80), allow("y/a", "x/b", tcp80)},
			}, {
				name:   "x/a loses target=isolated",
				labels: map[string]map[string]string{"x/a": podLabels("x/a")},
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "namespace-relabel-moves-access", title: "a namespace label moving from y to z moves the access with it",
			steps: []step{{
				name:     "namespace y carries team=blue; x/a admits team=blue",
				labels:   map[string]map[string]string{"y": nsLabels("y", "team=blue")},
				policies: policies(np("x", "allow-team-blue", podA, ingress(from(namespaces(match("team=blue")))))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), deny("z/a", "x/a", tcp80)},
			}, {
				name:   "y loses team=blue",
				labels: map[string]map[string]string{"y": nsLabels("y")},
				expect: []framework.Outcome{deny("y/a", "x/a", tcp80)},
			}, {
				name:   "z gains team=blue",
				labels: map[string]map[string]string{"z": nsLabels("z", "team=blue")},
				expect: []framework.Outcome{allow("z/a", "x/a", tcp80), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "policy-update-widens", title: "updating a policy's peers and rules widens access step by step",
			steps: []step{{
				name:     "x/a admits namespace y",
				policies: policies(np("x", "widening", podA, ingress(from(namespaces(named("y")))))),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), deny("z/a", "x/a", tcp80), deny("x/b", "x/a", tcp80)},
			}, {
				name:     "updated: namespaces y and z",
				policies: policies(np("x", "widening", podA, ingress(from(namespaces(nameIn("y", "z")))))),
				expect:   []framework.Outcome{allow("z/a", "x/a", tcp80), deny("x/b", "x/a", tcp80)},
			}, {
				name:     "updated: everything",
				policies: policies(np("x", "widening", podA, ingress(anything()))),
				expect:   []framework.Outcome{allow("x/b", "x/a", tcp80), allow("ext1", "x/a", tcp80)},
			}},
		},
		{
			id: "policy-update-direction", title: "updating a policy from egress to ingress moves the isolation",
			steps: []step{{
				name:     "deny all egress from x/a",
				policies: policies(np("x", "flip", podA, egress())),
				expect:   []framework.Outcome{deny("x/a", "y/a", tcp80), allow("y/a", "x/a", tcp80)},
			}, {
				name:     "updated: deny all ingress to x/a",
				policies: policies(np("x", "flip", podA, ingress())),
				expect:   []framework.Outcome{allow("x/a", "y/a", tcp80), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "policy-deletion-partial", title: "deleting one of two policies removes only what it allowed",
			steps: []step{{
				name: "deny ingress in x; x/a admits namespace y",
				policies: policies(denyIngress("x", "deny-ingress"),
					np("x", "allow-y", podA, ingress(from(namespaces(named("y")))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), deny("y/a", "x/b", tcp80)},
			}, {
				name:     "delete allow-y",
				policies: policies(denyIngress("x", "deny-ingress")),
				expect:   []framework.Outcome{deny("y/a", "x/a", tcp80)},
			}, {
				name:     "delete deny-ingress",
				policies: policies(),
				expect:   []framework.Outcome{allow("y/a", "x/a", tcp80), allow("y/a", "x/b", tcp80)},
			}},
		},
		{
			id: "stacked-policies-union", title: "four policies on one pod: the union of what each allows",
			steps: []step{{
				name: "deny ingress in x; x/a admits y on TCP 80, z/b on TCP 81, and x on UDP",
				policies: policies(denyIngress("x", "deny-ingress"),
					np("x", "allow-y-80", podA, ingress(from(namespaces(named("y"))).on(port(80, tcp)))),
					np("x", "allow-z-b-81", podA, ingress(from(podsIn(named("z"), podB)).on(port(81, tcp)))),
					np("x", "allow-x-udp", podA, ingress(from(pods(all())).on(protocolOnly(udp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", tcp80), deny("y/a", "x/a", tcp81), allow("z/b", "x/a", tcp81),
					deny("z/b", "x/a", tcp80), deny("z/a", "x/a", tcp81), allow("x/b", "x/a", udp80), deny("x/b", "x/a", tcp80),
					deny("y/a", "x/b", tcp80)},
			}},
		},
		{
			id: "stacked-egress-and-ingress", title: "policies in two namespaces: a connection needs the client's egress and the server's ingress",
			steps: []step{{
				name: "y/a may send to namespace x; x/a admits y/b",
				policies: policies(np("y", "y-a-egress-to-x", podA, egress(to(namespaces(named("x"))))),
					np("x", "x-a-from-y-b", podA, ingress(from(podsIn(named("y"), podB))))),
				expect: []framework.Outcome{deny("y/a", "x/a", tcp80), allow("y/b", "x/a", tcp80), allow("y/a", "x/b", tcp80),
					deny("y/a", "z/a", tcp80), deny("y/a", "y/b", tcp80)},
			}},
		},
		{
			id: "protocol-only-egress-udp", title: "an egress port with protocol UDP and no number allows every UDP port",
			steps: []step{{
				name:     "x/a may send UDP only",
				policies: policies(np("x", "egress-udp-only", podA, egress(onPorts(protocolOnly(udp))))),
				expect: []framework.Outcome{allow("x/a", "y/a", udp80), allow("x/a", "y/a", udp81), allow("x/a", dnsPod, dns53u),
					deny("x/a", dnsPod, dns53t), deny("x/a", "y/a", tcp80), deny("x/a", "y/a", sctp80), allow("x/a", "ext1", udp80)},
			}},
		},
		{
			id: "protocol-only-ingress-sctp", title: "an ingress port with protocol SCTP and no number admits every SCTP port",
			steps: []step{{
				name:     "x/a admits SCTP only",
				policies: policies(np("x", "ingress-sctp-only", podA, ingress(onPorts(protocolOnly(sctp))))),
				expect: []framework.Outcome{allow("y/a", "x/a", sctp80), allow("y/a", "x/a", sctp81), deny("y/a", "x/a", tcp80),
					deny("y/a", "x/a", udp80)},
			}},
		},
		{
			id: "egress-all-namespaces-excludes-externals", title: "egress to an empty namespaceSelector reaches every pod and no external host",
			steps: []step{{
				name:     "x/a may send to every namespace",
				policies: policies(np("x", "egress-all-namespaces", podA, egress(to(namespaces(all()))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp80), allow("x/a", dnsPod, dns53u), deny("x/a", "ext1", tcp80),
					deny("x/a", "ext2", udp80)},
			}},
		},
		{
			id: "egress-pod-selector-same-namespace", title: "an egress podSelector peer allows the matching pods of the policy's namespace only",
			steps: []step{{
				name:     "x/a may send to pod=b",
				policies: policies(np("x", "egress-to-b", podA, egress(to(pods(podB))))),
				expect:   []framework.Outcome{allow("x/a", "x/b", tcp80), deny("x/a", "y/b", tcp80), deny("x/a", "x/c", tcp80)},
			}},
		},
	}
}

// nodeCases probe traffic between pods and nodes, through one host-network
// pod per node (framework.ProbeModel.NodeEndpoints): a pod and its own node
// always reach each other, another node is like an address outside the
// cluster. The API leaves node traffic to implementations, so every cell
// between a pod and a node is implementation-defined (labels Node and
// ImplementationDefined): a CNI that differs there diverges.
func nodeCases() []testCase {
	denyAllX := np("x", "deny-all", all(), ingress(), egress())
	return []testCase{
		{
			id: "node-deny-all", title: "a pod isolated both ways still reaches its own node and is reached from it; other nodes are denied",
			nodes: true,
			steps: []step{{
				name:     "every pod of x is isolated for ingress and egress",
				policies: policies(denyAllX),
				expect: []framework.Outcome{allow("x/a", ownNode("x/a"), nodeTCP), allow(ownNode("x/a"), "x/a", tcp80),
					deny("x/a", otherNode("x/a"), nodeTCP), deny(otherNode("x/a"), "x/a", tcp80), allow("y/a", ownNode("y/a"), nodeTCP)},
			}},
		},
		{
			id: "node-namespace-selector-all", title: "a namespaceSelector {} peer admits every pod but no node, even host-network pods in a namespace",
			nodes: true,
			steps: []step{{
				name: "pods of x admit and send to every namespace only",
				policies: policies(denyAllX, np("x", "all-namespaces", all(),
					ingress(from(namespaces(all()))), egress(to(namespaces(all()))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp80), allow("y/b", "x/a", tcp80), deny("x/a", otherNode("x/a"), nodeTCP),
					deny(otherNode("x/b"), "x/b", udp81), allow(ownNode("x/b"), "x/b", udp81)},
			}},
		},
		{
			id: "node-ipblock", title: "an ipBlock holding the nodes' addresses admits other nodes both ways, and no pod",
			nodes: true,
			steps: []step{{
				name: "pods of x admit and send to the nodes' addresses only",
				policies: policies(denyAllX, np("x", "nodes", all(),
					ingress(from(ipBlock(nodeBlock()))), egress(to(ipBlock(nodeBlock()))))),
				expect: []framework.Outcome{allow("x/a", otherNode("x/a"), nodeTCP), allow(otherNode("x/a"), "x/a", tcp80),
					allow(ownNode("x/c"), "x/c", sctp81), deny("x/a", "y/a", tcp80), deny("y/a", "x/a", tcp80)},
			}},
		},
		{
			id: "node-only-other-nodes-denied", title: "policies admitting every pod and every external host still deny other nodes, and only them",
			nodes: true,
			steps: []step{{
				name: "pods of x admit and send to every namespace and 192.0.2.0/24",
				policies: policies(np("x", "pods-and-externals", all(),
					ingress(from(namespaces(all()), ipBlock(cidr("192.0.2.0/24")))),
					egress(to(namespaces(all()), ipBlock(cidr("192.0.2.0/24")))))),
				expect: []framework.Outcome{allow("x/a", "y/a", tcp80), allow("x/a", "ext1", tcp80), allow("ext2", "x/b", udp81),
					deny("x/a", otherNode("x/a"), nodeTCP), deny(otherNode("x/b"), "x/b", tcp80), allow(ownNode("x/a"), "x/a", tcp80)},
			}},
		},
		{
			id: "node-host-network-not-selected", title: "a policy selecting every pod of the host-network pods' namespace isolates none of them",
			nodes: true,
			steps: []step{{
				name:     "deny all in the node endpoints' namespace",
				policies: policies(np(framework.NodesNamespace, "deny-all", all(), ingress(), egress())),
				expect: []framework.Outcome{allow("x/a", ownNode("x/a"), nodeTCP), allow("x/a", otherNode("x/a"), nodeTCP),
					allow(otherNode("x/a"), "x/a", tcp80), allow(ownNode("x/a"), "y/b", udp80)},
			}},
		},
	}
}
