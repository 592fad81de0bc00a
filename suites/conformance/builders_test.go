package conformance_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// The small language the catalogue is written in: a case's policies are
// functions of a world (this run's namespace names and pod IPs), built from
// selectors, peers, ports and rules, so the same case runs on any process's
// probe model and offline on a fake one.

// world is what a policy may refer to besides logical names: the real name of
// each logical namespace and the IP of each logical pod ("x/b"); for cases
// probing nodes, also the node of each pod and the port the node endpoints
// serve.
type world struct {
	names framework.Names
	ips   map[string]string
	// nodes holds each pod's node, by logical name; nodePort is the port of
	// the node endpoints (logical pods nodes/host-<node>).
	nodes    map[string]string
	nodePort int32
}

func (w world) ns(logical string) string { return w.names.Namespace(logical) }

// ip returns the pod's IP, or "" (which validation rejects) for an unknown pod.
func (w world) ip(pod string) string { return w.ips[pod] }

type (
	policyFn func(w world) *networkingv1.NetworkPolicy
	option   func(w world, np *networkingv1.NetworkPolicy)
	selector func(w world) *metav1.LabelSelector
	peer     func(w world) networkingv1.NetworkPolicyPeer
	address  func(w world) string
)

// rule is an ingress or egress rule: no peers matches every peer, no ports
// every port.
type rule struct {
	peers []peer
	ports []networkingv1.NetworkPolicyPort
}

// policies gives the complete set of policies in force after a step.
func policies(ps ...policyFn) func(w world) []*networkingv1.NetworkPolicy {
	return func(w world) []*networkingv1.NetworkPolicy {
		out := make([]*networkingv1.NetworkPolicy, len(ps))
		for i, p := range ps {
			out[i] = p(w)
		}
		return out
	}
}

// np is the policy name in logical namespace ns selecting target.
func np(ns, name string, target selector, opts ...option) policyFn {
	return func(w world) *networkingv1.NetworkPolicy {
		p := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns(ns)},
			Spec:       networkingv1.NetworkPolicySpec{PodSelector: *target(w)},
		}
		for _, o := range opts {
			o(w, p)
		}
		return p
	}
}

// ingress lists the ingress rules and adds Ingress to policyTypes (so
// ingress() alone denies all ingress).
func ingress(rules ...rule) option {
	return func(w world, p *networkingv1.NetworkPolicy) {
		p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
		for _, r := range rules {
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.resolve(w), Ports: r.ports})
		}
	}
}

// egress lists the egress rules and adds Egress to policyTypes.
func egress(rules ...rule) option {
	return func(w world, p *networkingv1.NetworkPolicy) {
		p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{}
		for _, r := range rules {
			p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: r.resolve(w), Ports: r.ports})
		}
	}
}

// withoutPolicyTypes leaves policyTypes to the API server's defaulting.
func withoutPolicyTypes() option {
	return func(_ world, p *networkingv1.NetworkPolicy) { p.Spec.PolicyTypes = nil }
}

// policyTypes sets policyTypes explicitly, whatever rules the policy has.
func policyTypes(types ...networkingv1.PolicyType) option {
	return func(_ world, p *networkingv1.NetworkPolicy) { p.Spec.PolicyTypes = types }
}

func (r rule) resolve(w world) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, p := range r.peers {
		out = append(out, p(w))
	}
	return out
}

// from and to are rules with peers (every port until on says otherwise).
func from(peers ...peer) rule { return rule{peers: peers} }
func to(peers ...peer) rule   { return rule{peers: peers} }

// onPorts is a rule of every peer on the ports; anything is the rule {}.
func onPorts(ports ...networkingv1.NetworkPolicyPort) rule { return rule{ports: ports} }
func anything() rule                                       { return rule{} }

// on restricts a rule to ports.
func (r rule) on(ports ...networkingv1.NetworkPolicyPort) rule {
	r.ports = ports
	return r
}

// Peers.

func pods(s selector) peer {
	return func(w world) networkingv1.NetworkPolicyPeer { return networkingv1.NetworkPolicyPeer{PodSelector: s(w)} }
}

func namespaces(s selector) peer {
	return func(w world) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: s(w)}
	}
}

// podsIn is a peer with both selectors: pods matching pod in namespaces
// matching ns.
func podsIn(ns, pod selector) peer {
	return func(w world) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns(w), PodSelector: pod(w)}
	}
}

func ipBlock(cidr address, except ...address) peer {
	return func(w world) networkingv1.NetworkPolicyPeer {
		b := &networkingv1.IPBlock{CIDR: cidr(w)}
		for _, e := range except {
			b.Except = append(b.Except, e(w))
		}
		return networkingv1.NetworkPolicyPeer{IPBlock: b}
	}
}

// Addresses.

func cidr(s string) address { return func(world) string { return s } }

// podHost is the pod's IP as a host prefix.
func podHost(pod string) address {
	return func(w world) string {
		ip, err := netip.ParseAddr(w.ip(pod))
		if err != nil {
			return ""
		}
		return netip.PrefixFrom(ip, ip.BitLen()).String()
	}
}

// nodeBlock is the smallest prefix holding the addresses of every node
// endpoint (the nodes' addresses).
func nodeBlock() address {
	return func(w world) string {
		var block netip.Prefix
		for name, s := range w.ips {
			ip, err := netip.ParseAddr(s)
			if !strings.HasPrefix(name, framework.NodesNamespace+"/") || err != nil {
				continue
			}
			if !block.IsValid() {
				block = netip.PrefixFrom(ip, ip.BitLen())
			}
			for !block.Contains(ip) {
				block = netip.PrefixFrom(block.Addr(), block.Bits()-1).Masked()
			}
		}
		if !block.IsValid() {
			return ""
		}
		return block.String()
	}
}

// podSlash4 is the /4 around the pod's IP (as upstream builds it): a large
// block holding every pod of the cluster and no external host of the model.
func podSlash4(pod string) address {
	return func(w world) string {
		ip, err := netip.ParseAddr(w.ip(pod))
		if err != nil {
			return ""
		}
		return netip.PrefixFrom(ip, 4).Masked().String()
	}
}

// Selectors.

// all is the empty selector {}.
func all() selector { return func(world) *metav1.LabelSelector { return &metav1.LabelSelector{} } }

// match is matchLabels from "key=value" pairs.
func match(pairs ...string) selector {
	return func(world) *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: labelMap(pairs...)} }
}

// named selects the logical namespace by its kubernetes.io/metadata.name label.
func named(ns string) selector {
	return func(w world) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: w.ns(ns)}}
	}
}

// nameIn and nameNotIn are matchExpressions on kubernetes.io/metadata.name
// with the real names of logical namespaces.
func nameIn(nss ...string) selector { return nameExpression(metav1.LabelSelectorOpIn, nss) }
func nameNotIn(nss ...string) selector {
	return nameExpression(metav1.LabelSelectorOpNotIn, nss)
}

func nameExpression(op metav1.LabelSelectorOperator, nss []string) selector {
	return func(w world) *metav1.LabelSelector {
		names := make([]string, len(nss))
		for i, ns := range nss {
			names[i] = w.ns(ns)
		}
		return expression(corev1.LabelMetadataName, op, names...)(w)
	}
}

func in(key string, values ...string) selector {
	return expression(key, metav1.LabelSelectorOpIn, values...)
}

func notIn(key string, values ...string) selector {
	return expression(key, metav1.LabelSelectorOpNotIn, values...)
}

func exists(key string) selector { return expression(key, metav1.LabelSelectorOpExists) }
func doesNotExist(key string) selector {
	return expression(key, metav1.LabelSelectorOpDoesNotExist)
}

func expression(key string, op metav1.LabelSelectorOperator, values ...string) selector {
	return func(world) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
}

// Policy ports.

func portNumber(n int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(n))}
}

func port(n int32, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(n)), Protocol: ptr(proto)}
}

func portRange(n, end int32, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(n)), EndPort: ptr(end), Protocol: ptr(proto)}
}

// namedPort leaves the protocol to defaulting (TCP).
func namedPort(name string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromString(name))}
}

func namedPortOf(name string, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromString(name)), Protocol: ptr(proto)}
}

func protocolOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr(proto)}
}

func ptr[T any](v T) *T { return &v }

// Protocols, and the probe model's columns outcomes refer to.
const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

var (
	tcp80  = matrix.PortProtocol{Port: 80, Protocol: tcp}
	tcp81  = matrix.PortProtocol{Port: 81, Protocol: tcp}
	udp80  = matrix.PortProtocol{Port: 80, Protocol: udp}
	udp81  = matrix.PortProtocol{Port: 81, Protocol: udp}
	sctp80 = matrix.PortProtocol{Port: 80, Protocol: sctp}
	sctp81 = matrix.PortProtocol{Port: 81, Protocol: sctp}
	dns53u = matrix.PortProtocol{Port: 53, Protocol: udp}
	dns53t = matrix.PortProtocol{Port: 53, Protocol: tcp}
)

// Outcomes, by logical endpoint: "x/a", "ext1", dnsPod, or a pod's own node
// or another node (see ownNode, otherNode), with nodeTCP the node endpoints'
// port.

// Node endpoints in outcomes: the pod's own node, or another node, as the
// pods are placed at run time (see world.outcome).
const (
	ownNodeOf   = "own-node-of:"
	otherNodeOf = "other-node-of:"
)

func ownNode(pod string) string   { return ownNodeOf + pod }
func otherNode(pod string) string { return otherNodeOf + pod }

// nodeTCP stands for the node endpoints' TCP port (world.nodePort).
var nodeTCP = matrix.PortProtocol{Port: 0, Protocol: tcp}

// outcome resolves an outcome's node endpoints and port in the world; false
// when it names another node and there is none (a one-node cluster).
func (w world) outcome(o framework.Outcome) (framework.Outcome, bool) {
	var ok bool
	if o.From, ok = w.endpoint(o.From); !ok {
		return o, false
	}
	if o.To, ok = w.endpoint(o.To); !ok {
		return o, false
	}
	if o.Port == nodeTCP {
		o.Port.Port = w.nodePort
	}
	return o, true
}

func (w world) endpoint(logical string) (string, bool) {
	if pod, ok := strings.CutPrefix(logical, ownNodeOf); ok {
		return nodeHost(w.nodes[pod]), w.nodes[pod] != ""
	}
	pod, ok := strings.CutPrefix(logical, otherNodeOf)
	if !ok {
		return logical, true
	}
	var others []string
	for name, node := range w.nodes {
		if strings.HasPrefix(name, framework.NodesNamespace+"/") && node != w.nodes[pod] {
			others = append(others, node)
		}
	}
	if len(others) == 0 {
		return "", false
	}
	return nodeHost(slices.Min(others)), true
}

// nodeHost is the logical name of a node's node endpoint.
func nodeHost(node string) string { return framework.NodesNamespace + "/host-" + node }

func allow(from, to string, pp matrix.PortProtocol) framework.Outcome {
	return framework.Outcome{From: from, To: to, Port: pp, Allowed: true}
}

func deny(from, to string, pp matrix.PortProtocol) framework.Outcome {
	return framework.Outcome{From: from, To: to, Port: pp, Allowed: false}
}

// Labels of namespaces and pods, for steps that relabel them: the model's
// own label (ns=<x> or pod=<a>) plus extra "key=value" pairs.

func nsLabels(ns string, extra ...string) map[string]string {
	return labelMap(append([]string{"ns=" + ns}, extra...)...)
}

func podLabels(pod string, extra ...string) map[string]string {
	_, name, _ := strings.Cut(pod, "/")
	return labelMap(append([]string{"pod=" + name}, extra...)...)
}

func labelMap(pairs ...string) map[string]string {
	out := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			panic(fmt.Sprintf("label %q: want key=value", kv)) // catalogue typo, caught offline
		}
		out[k] = v
	}
	return out
}
