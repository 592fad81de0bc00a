// Package generate builds NetworkPolicies and whole test cases
// combinatorially, deterministically from a seed (or from fuzz input), over a
// universe of namespaces, pod labels, ports and address blocks. The generated
// suite, the enforcer's differential tests and the engine's fuzz test share it.
package generate

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Source gives the generator its choices.
type Source interface {
	// Intn returns a number in [0, n).
	Intn(n int) int
}

// Seeded returns a deterministic Source for a seed.
func Seeded(seed uint64) Source {
	return seededSource{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type seededSource struct{ r *rand.Rand }

func (s seededSource) Intn(n int) int { return s.r.IntN(n) }

// Bytes is a Source driven by fuzz input: each choice consumes one byte, and
// an exhausted input chooses 0, so every input is a valid program.
type Bytes struct {
	data []byte
	next int
}

// NewBytes returns a Source reading choices from data.
func NewBytes(data []byte) *Bytes { return &Bytes{data: data} }

// Intn returns the next byte modulo n.
func (b *Bytes) Intn(n int) int {
	if b.next >= len(b.data) || n <= 1 {
		return 0
	}
	v := int(b.data[b.next])
	b.next++
	return v % n
}

// Namespace is a namespace of the universe: its real name and the value of
// its `ns` label, which policies select on.
type Namespace struct {
	Name  string
	Label string
}

// Port is a port every pod serves, with the name of the container port.
type Port struct {
	Port     int32
	Name     string
	Protocol corev1.Protocol
}

// Universe is what generated policies may refer to. Pods carry the label
// pod=<one of Pods>; namespaces the label ns=<Namespace.Label>.
type Universe struct {
	Namespaces []Namespace
	Pods       []string
	Ports      []Port
	// PodCIDRs are the nodes' pod ranges, IPv4 and IPv6; ipBlocks over them
	// match pods (implementation-defined, labelled IPBlockPodIP).
	PodCIDRs []string
	// ExternalCIDR holds the external hosts; ExternalHosts are /32s in it.
	ExternalCIDR  string
	ExternalHosts []string
}

// Feature labels attached to generated cases.
const (
	LabelEgress       = "Egress"
	LabelNamedPort    = "NamedPort"
	LabelEndPort      = "EndPort"
	LabelIPBlock      = "IPBlock"
	LabelIPBlockPodIP = "IPBlockPodIP"
	LabelSCTP         = "SCTP"
	LabelUDP          = "UDP"
	LabelUpdate       = "Update"
)

// Generator makes policies over a universe from a source of choices.
type Generator struct {
	src    Source
	u      Universe
	labels map[string]bool
}

// New returns a generator.
func New(src Source, u Universe) *Generator {
	return &Generator{src: src, u: u, labels: map[string]bool{}}
}

func (g *Generator) pick(n int) int { return g.src.Intn(n) }

func (g *Generator) chance(outOf int) bool { return g.pick(outOf) == 0 }

// Labels returns the feature labels of everything generated so far, sorted.
func (g *Generator) Labels() []string {
	out := make([]string, 0, len(g.labels))
	for l := range g.labels {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// Policy generates one policy named name in one of the universe's namespaces.
func (g *Generator) Policy(name string) *networkingv1.NetworkPolicy {
	ns := g.u.Namespaces[g.pick(len(g.u.Namespaces))]
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: g.podSelector()},
	}
	switch g.pick(4) {
	case 0: // leave policyTypes to the API server's defaulting
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	default:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for range g.pick(3) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(), Ports: g.ports()})
	}
	for range g.pick(3) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(), Ports: g.ports()})
	}
	if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || (len(np.Spec.PolicyTypes) == 0 && len(np.Spec.Egress) > 0) {
		g.labels[LabelEgress] = true
	}
	return np
}

// Policies generates between 1 and max policies named <prefix>-<i>.
func (g *Generator) Policies(prefix string, max int) []*networkingv1.NetworkPolicy {
	out := make([]*networkingv1.NetworkPolicy, 1+g.pick(max))
	for i := range out {
		out[i] = g.Policy(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// AddRule adds an allow rule to a direction the policy already isolates,
// making policyTypes explicit first so the addition cannot change isolation.
// The result allows a superset of what np allows.
func (g *Generator) AddRule(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
	out := np.DeepCopy()
	if len(out.Spec.PolicyTypes) == 0 {
		out.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(out.Spec.Egress) > 0 {
			out.Spec.PolicyTypes = append(out.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	switch out.Spec.PolicyTypes[g.pick(len(out.Spec.PolicyTypes))] {
	case networkingv1.PolicyTypeIngress:
		out.Spec.Ingress = append(out.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(), Ports: g.ports()})
	default:
		out.Spec.Egress = append(out.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(), Ports: g.ports()})
	}
	return out
}

func (g *Generator) podSelector() metav1.LabelSelector {
	pods := g.u.Pods
	switch g.pick(6) {
	case 0:
		return metav1.LabelSelector{}
	case 5:
		// on the pod label, or on one no pod has
		key := []string{"pod", "missing"}[g.pick(2)]
		op := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}[g.pick(2)]
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op}}}
	case 1:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "pod", Operator: metav1.LabelSelectorOpIn, Values: g.someOf(pods),
		}}}
	case 2:
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "pod", Operator: metav1.LabelSelectorOpNotIn, Values: g.someOf(pods),
		}}}
	default:
		return metav1.LabelSelector{MatchLabels: map[string]string{"pod": pods[g.pick(len(pods))]}}
	}
}

func (g *Generator) namespaceSelector() *metav1.LabelSelector {
	nss := g.u.Namespaces
	switch g.pick(8) {
	case 0:
		return &metav1.LabelSelector{}
	case 6:
		// the label the API server puts on every namespace
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: nss[g.pick(len(nss))].Name}}
	case 7:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "ns", Operator: metav1.LabelSelectorOpNotIn, Values: []string{nss[g.pick(len(nss))].Label},
		}}}
	case 1:
		labels := make([]string, 0, 2)
		for range 1 + g.pick(2) {
			labels = append(labels, nss[g.pick(len(nss))].Label)
		}
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "ns", Operator: metav1.LabelSelectorOpIn, Values: dedupe(labels),
		}}}
	case 2:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ns", Operator: metav1.LabelSelectorOpExists}}}
	case 3:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ns", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	default:
		return &metav1.LabelSelector{MatchLabels: map[string]string{"ns": nss[g.pick(len(nss))].Label}}
	}
}

func (g *Generator) someOf(values []string) []string {
	var out []string
	for _, v := range values {
		if g.chance(2) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = append(out, values[g.pick(len(values))])
	}
	return out
}

func dedupe(values []string) []string {
	slices.Sort(values)
	return slices.Compact(values)
}

func (g *Generator) peers() []networkingv1.NetworkPolicyPeer {
	n := g.pick(4) // 0: no peers, every peer matches
	var out []networkingv1.NetworkPolicyPeer
	for range n {
		switch g.pick(5) {
		case 0:
			sel := g.podSelector()
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &sel})
		case 1:
			out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: g.namespaceSelector()})
		case 2, 3:
			sel := g.podSelector()
			out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: g.namespaceSelector(), PodSelector: &sel})
		default:
			out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: g.ipBlock()})
		}
	}
	return out
}

// ipBlock picks a block over pod ranges (IPv4 or IPv6) or the external
// hosts, from a single address to everything, with excepts inside it that
// may overlap each other: nested excepts and wide blocks are where
// enforcers go wrong.
func (g *Generator) ipBlock() *networkingv1.IPBlock {
	g.labels[LabelIPBlock] = true
	var menu []blockChoice
	for _, s := range g.u.PodCIDRs {
		menu = append(menu, g.blocksOver(netip.MustParsePrefix(s))...)
	}
	if g.u.ExternalCIDR != "" {
		menu = append(menu, g.blocksOver(netip.MustParsePrefix(g.u.ExternalCIDR))...)
	}
	choice := menu[g.pick(len(menu))]
	b := &networkingv1.IPBlock{CIDR: choice.cidr.String()}
	for _, e := range choice.excepts {
		if g.chance(3) {
			b.Except = append(b.Except, e.String())
		}
	}
	for _, s := range g.u.PodCIDRs {
		if choice.cidr.Overlaps(netip.MustParsePrefix(s)) {
			g.labels[LabelIPBlockPodIP] = true
		}
	}
	return b
}

type blockChoice struct {
	cidr    netip.Prefix
	excepts []netip.Prefix
}

// blocksOver returns blocks related to a range r: r with a host and a
// small sub-block excepted, a single host, and the whole address family
// with r excepted.
func (g *Generator) blocksOver(r netip.Prefix) []blockChoice {
	bits := r.Addr().BitLen()
	host := netip.PrefixFrom(nthAddr(r.Addr(), 10+g.pick(5)), bits)
	sub := netip.PrefixFrom(nthAddr(r.Addr(), 8), bits-3)
	all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if r.Addr().Is6() {
		all = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	out := []blockChoice{{cidr: host}, {cidr: all, excepts: []netip.Prefix{r}}}
	if r.Bits() < bits-3 {
		out = append(out, blockChoice{cidr: r, excepts: []netip.Prefix{host, sub}})
	}
	for _, h := range g.u.ExternalHosts {
		if p := netip.MustParsePrefix(h); r.Contains(p.Addr()) && p.Bits() > r.Bits() {
			out = append(out, blockChoice{cidr: r, excepts: []netip.Prefix{p}}, blockChoice{cidr: p})
		}
	}
	return out
}

func nthAddr(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

func (g *Generator) ports() []networkingv1.NetworkPolicyPort {
	n := g.pick(3) // 0: no ports, every port matches
	protocols := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	var out []networkingv1.NetworkPolicyPort
	for range n {
		p := g.u.Ports[g.pick(len(g.u.Ports))]
		proto := p.Protocol
		port := networkingv1.NetworkPolicyPort{Protocol: &proto}
		switch g.pick(7) {
		case 0:
			port.Port = ptr(intstr.FromString(p.Name))
			g.labels[LabelNamedPort] = true
		case 1:
			// a named port under any protocol: under another than its own it matches nothing
			proto = protocols[g.pick(len(protocols))]
			port.Port = ptr(intstr.FromString(p.Name))
			g.labels[LabelNamedPort] = true
		case 2:
			from := max(1, p.Port-int32(g.pick(2)))
			port.Port = ptr(intstr.FromInt32(from))
			port.EndPort = ptr(min(65535, p.Port+int32(g.pick(2))))
			g.labels[LabelEndPort] = true
		case 3:
			// a wide range around the port
			port.Port = ptr(intstr.FromInt32(max(1, p.Port-int32(1+g.pick(64)))))
			port.EndPort = ptr(min(65535, p.Port+int32(g.pick(1000))))
			g.labels[LabelEndPort] = true
		case 4:
			// protocol only: every port of the protocol
		case 5:
			// no protocol: the API server defaults it to TCP
			port.Protocol = nil
			proto = corev1.ProtocolTCP
			port.Port = ptr(intstr.FromInt32(p.Port))
		default:
			port.Port = ptr(intstr.FromInt32(p.Port))
		}
		switch proto {
		case corev1.ProtocolSCTP:
			g.labels[LabelSCTP] = true
		case corev1.ProtocolUDP:
			g.labels[LabelUDP] = true
		}
		out = append(out, port)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// Case is a generated test case: policies applied in steps (the second and
// later steps update, add or delete policies), with feature labels.
type Case struct {
	Name   string
	Labels []string
	// Steps holds the complete set of policies in force at each step.
	Steps [][]*networkingv1.NetworkPolicy
}

// Cases generates n cases deterministically from seed: one to three policies
// each, and for about one case in four an update step that adds a rule to a
// policy, replaces one, or deletes one.
func Cases(seed uint64, n int, u Universe) []Case {
	out := make([]Case, 0, n)
	for i := range n {
		g := New(Seeded(seed+uint64(i)), u)
		var policies []*networkingv1.NetworkPolicy
		count := 1 + g.pick(3)
		for j := range count {
			policies = append(policies, g.Policy(fmt.Sprintf("gen-%d-%d", i, j)))
		}
		c := Case{Steps: [][]*networkingv1.NetworkPolicy{policies}}
		if g.chance(4) {
			next := slices.Clone(policies)
			k := g.pick(len(next))
			switch g.pick(3) {
			case 0:
				next[k] = g.AddRule(next[k])
			case 1:
				replacement := g.Policy(next[k].Name)
				replacement.Namespace = next[k].Namespace
				next[k] = replacement
			default:
				next = slices.Delete(next, k, k+1)
			}
			c.Steps = append(c.Steps, next)
			g.labels[LabelUpdate] = true
		}
		c.Labels = g.Labels()
		c.Name = fmt.Sprintf("generated %04d (seed %d): %s", i, seed+uint64(i), describe(c.Steps[0]))
		out = append(out, c)
	}
	return out
}

// describe summarises policies in a few words for a case name.
func describe(policies []*networkingv1.NetworkPolicy) string {
	parts := make([]string, len(policies))
	for i, np := range policies {
		var dirs []string
		if len(np.Spec.Ingress) > 0 || len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			dirs = append(dirs, fmt.Sprintf("%d ingress", len(np.Spec.Ingress)))
		}
		if len(np.Spec.Egress) > 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			dirs = append(dirs, fmt.Sprintf("%d egress", len(np.Spec.Egress)))
		}
		parts[i] = fmt.Sprintf("%s/%s (%s)", np.Namespace, np.Name, strings.Join(dirs, ", "))
	}
	return strings.Join(parts, "; ")
}
