// Package randpolicy generates random, valid NetworkPolicies over the
// upstream-shaped test model (namespaces x, y, z; pods a, b, c; ports 80 and
// 81 named serve-<port>-<protocol>; pod CIDRs 10.244.k.0/24 and
// fd00:10:244:k::/64; external hosts in 192.0.2.0/24). It leans on the corners
// where enforcers go wrong: selector combinations, overlapping ipBlocks with
// excepts, named ports (also with the wrong protocol), endPort ranges, absent
// ports and peers, and policyTypes defaulting. The same seed gives the same
// policies.
package randpolicy

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// Generator produces random policy sets.
type Generator struct {
	rng *rand.Rand
}

// New returns a generator seeded with seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, 0x6e70636865636b))}
}

// Case returns between 1 and max random policies, named <prefix>-<i>, each of
// which passes the API server's validation.
func (g *Generator) Case(prefix string, max int) []*networkingv1.NetworkPolicy {
	n := 1 + g.rng.IntN(max)
	out := make([]*networkingv1.NetworkPolicy, 0, n)
	for len(out) < n {
		np := g.policy(fmt.Sprintf("%s-%d", prefix, len(out)))
		if len(matrix.ValidatePolicy(np)) == 0 {
			out = append(out, np)
		}
	}
	return out
}

func (g *Generator) pick(options ...string) string { return options[g.rng.IntN(len(options))] }

func (g *Generator) chance(percent int) bool { return g.rng.IntN(100) < percent }

func (g *Generator) policy(name string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.pick("x", "y", "z"), Name: name},
	}
	np.Spec.PodSelector = g.podSelector()
	switch g.rng.IntN(4) {
	case 0: // empty: the API server's defaulting applies
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	default:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for range g.rng.IntN(3) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(), Ports: g.ports()})
	}
	for range g.rng.IntN(3) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(), Ports: g.ports()})
	}
	return np
}

func (g *Generator) podSelector() metav1.LabelSelector {
	switch g.rng.IntN(6) {
	case 0, 1:
		return metav1.LabelSelector{}
	case 2, 3:
		return metav1.LabelSelector{MatchLabels: map[string]string{"pod": g.pick("a", "b", "c")}}
	case 4:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "pod", Operator: metav1.LabelSelectorOperator(g.pick("In", "NotIn")), Values: []string{g.pick("a", "b", "c"), g.pick("a", "b", "c")},
		}}}
	default:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: g.pick("pod", "missing"), Operator: metav1.LabelSelectorOperator(g.pick("Exists", "DoesNotExist")),
		}}}
	}
}

func (g *Generator) namespaceSelector() *metav1.LabelSelector {
	switch g.rng.IntN(4) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		return &metav1.LabelSelector{MatchLabels: map[string]string{"ns": g.pick("x", "y", "z")}}
	case 2:
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: g.pick("x", "y", "z")}}
	default:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "ns", Operator: metav1.LabelSelectorOpNotIn, Values: []string{g.pick("x", "y", "z")},
		}}}
	}
}

func (g *Generator) peers() []networkingv1.NetworkPolicyPeer {
	if g.chance(25) {
		return nil
	}
	var out []networkingv1.NetworkPolicyPeer
	for range 1 + g.rng.IntN(3) {
		switch g.rng.IntN(5) {
		case 0:
			sel := g.podSelector()
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &sel})
		case 1:
			out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: g.namespaceSelector()})
		case 2:
			sel := g.podSelector()
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &sel, NamespaceSelector: g.namespaceSelector()})
		default:
			out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: g.ipBlock()})
		}
	}
	return out
}

// ipBlock picks a CIDR and excepts inside it, over pods (IPv4 and IPv6) and
// external hosts.
func (g *Generator) ipBlock() *networkingv1.IPBlock {
	type block struct {
		cidr    string
		excepts []string
	}
	node := 1 + g.rng.IntN(2)
	host := 10 + g.rng.IntN(5)
	blocks := []block{
		{"0.0.0.0/0", []string{"10.244.0.0/16", "192.0.2.0/24", "192.0.2.10/32", fmt.Sprintf("10.244.%d.0/24", node)}},
		{"10.244.0.0/16", []string{fmt.Sprintf("10.244.%d.0/24", node), fmt.Sprintf("10.244.%d.%d/32", node, host), fmt.Sprintf("10.244.%d.8/29", node)}},
		{fmt.Sprintf("10.244.%d.0/24", node), []string{fmt.Sprintf("10.244.%d.%d/32", node, host), fmt.Sprintf("10.244.%d.12/30", node)}},
		{fmt.Sprintf("10.244.%d.%d/32", node, host), nil},
		{"192.0.2.0/24", []string{"192.0.2.10/32", "192.0.2.11/32", "192.0.2.8/30"}},
		{fmt.Sprintf("192.0.2.%d/32", 10+g.rng.IntN(2)), nil},
		{"::/0", []string{"fd00:10:244::/56", fmt.Sprintf("fd00:10:244:%d::/64", node)}},
		{"fd00:10:244::/56", []string{fmt.Sprintf("fd00:10:244:%d::/64", node), fmt.Sprintf("fd00:10:244:%d::%d/128", node, host)}},
		{fmt.Sprintf("fd00:10:244:%d::/64", node), []string{fmt.Sprintf("fd00:10:244:%d::%d/128", node, host)}},
	}
	b := blocks[g.rng.IntN(len(blocks))]
	out := &networkingv1.IPBlock{CIDR: b.cidr}
	for _, e := range b.excepts {
		if g.chance(35) {
			out.Except = append(out.Except, e)
		}
	}
	return out
}

func (g *Generator) ports() []networkingv1.NetworkPolicyPort {
	if g.chance(30) {
		return nil
	}
	var out []networkingv1.NetworkPolicyPort
	for range 1 + g.rng.IntN(3) {
		var p networkingv1.NetworkPolicyPort
		protocols := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
		if g.chance(75) {
			proto := protocols[g.rng.IntN(3)]
			p.Protocol = &proto
		}
		switch g.rng.IntN(7) {
		case 0: // every port of the protocol
		case 1, 2:
			port := intstr.FromInt32(int32(80 + g.rng.IntN(2)))
			p.Port = &port
		case 3:
			first := int32(79 + g.rng.IntN(3))
			end := first + int32(g.rng.IntN(3))
			port := intstr.FromInt32(first)
			p.Port, p.EndPort = &port, &end
		case 4:
			port := intstr.FromInt32(int32(1 + g.rng.IntN(79)))
			end := int32(80 + g.rng.IntN(1000))
			p.Port, p.EndPort = &port, &end
		default:
			// a named port, sometimes under another protocol than its own
			port := intstr.FromString(fmt.Sprintf("serve-%d-%s", 80+g.rng.IntN(2), g.pick("tcp", "udp", "sctp")))
			p.Port = &port
		}
		out = append(out, p)
	}
	return out
}
