package matrix

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Engine computes what the NetworkPolicy API says about every connection in a
// model: the expected truth table, and an explanation for any single cell.
// It is built once per (model, policies) pair and is safe for concurrent reads.
type Engine struct {
	endpoints []Endpoint
	index     map[string]int
	ports     []PortProtocol
	policies  []*policy
	// isolation[dir][e] lists the policies that select endpoint e for the direction.
	isolation [2][][]int
	// hasFamily[f] holds the endpoints with an address of family f;
	// primaryFamily[f] those whose first address is of family f.
	hasFamily, primaryFamily [2]bitset
	// named indexes pods by the named ports they serve.
	named map[namedPort]bitset
}

type direction int

const (
	ingress direction = iota
	egress
)

func (d direction) String() string {
	if d == ingress {
		return "ingress"
	}
	return "egress"
}

// address families, as indexes
const (
	ipv4 = 0
	ipv6 = 1
)

func familyOf(ip netip.Addr) int {
	if ip.Is4() {
		return ipv4
	}
	return ipv6
}

type namedPort struct {
	name     string
	protocol corev1.Protocol
	port     int32
}

// policy is a defaulted, validated NetworkPolicy compiled against a model.
type policy struct {
	name     string
	isolates [2]bool
	selected bitset
	rules    [2][]rule
}

type rule struct {
	peers []peer // empty: every peer, pods and any IP
	ports []port // empty: every port and protocol
	// match[f] holds the endpoints matched by some peer when the connection
	// uses address family f.
	match [2]bitset
	// targets holds the endpoints this rule matches as egress destinations:
	// each destination is reached on its primary address.
	targets bitset
}

type peer struct {
	kind  string // "podSelector", "namespaceSelector", "namespaceSelector+podSelector", "ipBlock"
	pods  bitset // selector peers
	block *ipBlock
}

type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func (b *ipBlock) contains(ip netip.Addr) bool {
	if !b.cidr.Contains(ip) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}

type port struct {
	protocol corev1.Protocol
	any      bool // no port given: every port of the protocol
	from, to int32
	name     string
}

// matchesNumber reports whether a numeric (or absent) port matches pp
// regardless of the destination.
func (p port) matchesNumber(pp PortProtocol) bool {
	if p.protocol != pp.Protocol || p.name != "" {
		return false
	}
	return p.any || (pp.Port >= p.from && pp.Port <= p.to)
}

// NewEngine validates the model and the policies, applies the API server's
// defaults to the policies, and compiles them against the model. Policies may
// come in any order: the result does not depend on it.
func NewEngine(model *Model, policies []*networkingv1.NetworkPolicy) (*Engine, error) {
	if errs := model.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid model: %w", errs.ToAggregate())
	}
	e := &Engine{endpoints: model.Endpoints(), index: map[string]int{}, named: map[namedPort]bitset{}}
	n := len(e.endpoints)
	for f := range 2 {
		e.hasFamily[f], e.primaryFamily[f] = newBitset(n), newBitset(n)
	}
	nsLabels := map[string]labels.Set{}
	for _, ns := range model.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	for i, ep := range e.endpoints {
		e.index[ep.Name] = i
		for _, ip := range ep.IPs {
			e.hasFamily[familyOf(ip)].set(i)
		}
		if ip, ok := ep.PrimaryIP(); ok {
			e.primaryFamily[familyOf(ip)].set(i)
		}
		if ep.External {
			continue
		}
		for _, p := range ep.Ports {
			if p.Name == "" {
				continue
			}
			key := namedPort{name: p.Name, protocol: p.Protocol, port: p.ContainerPort.ContainerPort}
			if e.named[key] == nil {
				e.named[key] = newBitset(n)
			}
			e.named[key].set(i)
		}
	}
	e.ports = PortProtocols(e.endpoints)

	sorted := append([]*networkingv1.NetworkPolicy(nil), policies...)
	sort.Slice(sorted, func(i, j int) bool { return policyName(sorted[i]) < policyName(sorted[j]) })
	c := compiler{engine: e, nsLabels: nsLabels, peers: map[string]bitset{}}
	for i, np := range sorted {
		if i > 0 && policyName(np) == policyName(sorted[i-1]) {
			return nil, fmt.Errorf("policy %s: given twice", policyName(np))
		}
		if errs := ValidatePolicy(np); len(errs) > 0 {
			return nil, fmt.Errorf("policy %s is invalid: %w", policyName(np), errs.ToAggregate())
		}
		p, err := c.compile(DefaultPolicy(np))
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", policyName(np), err)
		}
		e.policies = append(e.policies, p)
	}
	for dir := range e.isolation {
		e.isolation[dir] = make([][]int, n)
	}
	for pi, p := range e.policies {
		for dir := range e.isolation {
			if !p.isolates[dir] {
				continue
			}
			for i := range n {
				if p.selected.has(i) {
					e.isolation[dir][i] = append(e.isolation[dir][i], pi)
				}
			}
		}
	}
	return e, nil
}

// ownNode reports whether the endpoints from and to (by table index) are a
// pod and a host-network pod on its node, in either order: traffic between a
// pod and its own node is always allowed (Kubernetes allows it so kubelet
// health checks work, whatever the policies). Traffic with another node is
// judged like traffic with an address outside the cluster.
func (e *Engine) ownNode(from, to int) bool {
	a, b := e.endpoints[from], e.endpoints[to]
	if a.HostNetwork == b.HostNetwork || a.External || b.External {
		return false
	}
	return a.Node != "" && a.Node == b.Node
}

// nodeCell reports whether the endpoints are a pod and a host-network pod,
// on any node: whether policies govern such traffic is implementation-defined.
func (e *Engine) nodeCell(from, to int) bool {
	a, b := e.endpoints[from], e.endpoints[to]
	return !a.External && !b.External && a.HostNetwork != b.HostNetwork
}

// Endpoints returns the model's endpoints in table order.
func (e *Engine) Endpoints() []Endpoint { return e.endpoints }

// Ports returns every port/protocol served in the model.
func (e *Engine) Ports() []PortProtocol { return e.ports }

// compiler turns API objects into selections over the model's endpoints,
// sharing the result of identical peers between policies.
type compiler struct {
	engine   *Engine
	nsLabels map[string]labels.Set
	peers    map[string]bitset
}

func (c *compiler) compile(np *networkingv1.NetworkPolicy) (*policy, error) {
	e := c.engine
	p := &policy{name: policyName(np)}
	for _, t := range np.Spec.PolicyTypes {
		p.isolates[directionOf(t)] = true
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.podSelector: %w", err)
	}
	p.selected = newBitset(len(e.endpoints))
	for i, ep := range e.endpoints {
		if ep.Policed() && ep.Namespace == np.Namespace && sel.Matches(labels.Set(ep.Labels)) {
			p.selected.set(i)
		}
	}
	for i, r := range np.Spec.Ingress {
		cr, err := c.rule(np.Namespace, r.From, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("spec.ingress[%d]: %w", i, err)
		}
		p.rules[ingress] = append(p.rules[ingress], cr)
	}
	for i, r := range np.Spec.Egress {
		cr, err := c.rule(np.Namespace, r.To, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("spec.egress[%d]: %w", i, err)
		}
		p.rules[egress] = append(p.rules[egress], cr)
	}
	return p, nil
}

func directionOf(t networkingv1.PolicyType) direction {
	if t == networkingv1.PolicyTypeEgress {
		return egress
	}
	return ingress
}

func (c *compiler) rule(namespace string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (rule, error) {
	e := c.engine
	n := len(e.endpoints)
	var r rule
	for i, p := range peers {
		cp, err := c.peer(namespace, p)
		if err != nil {
			return rule{}, fmt.Errorf("peer %d: %w", i, err)
		}
		r.peers = append(r.peers, cp)
	}
	for _, p := range ports {
		r.ports = append(r.ports, compilePort(p))
	}
	for f := range 2 {
		if len(r.peers) == 0 {
			r.match[f] = fullBitset(n)
			continue
		}
		r.match[f] = newBitset(n)
		for _, p := range r.peers {
			if p.block == nil {
				r.match[f].or(p.pods)
				continue
			}
			for i, ep := range e.endpoints {
				if ip, ok := ipOfFamily(ep, f); ok && p.block.contains(ip) {
					r.match[f].set(i)
				}
			}
		}
	}
	r.targets = newBitset(n)
	for f := range 2 {
		r.targets.orAnd(r.match[f], e.primaryFamily[f])
	}
	return r, nil
}

func ipOfFamily(ep Endpoint, f int) (netip.Addr, bool) {
	for _, ip := range ep.IPs {
		if familyOf(ip) == f {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func (c *compiler) peer(namespace string, p networkingv1.NetworkPolicyPeer) (peer, error) {
	if p.IPBlock != nil {
		b, err := compileIPBlock(p.IPBlock)
		return peer{kind: "ipBlock", block: b}, err
	}
	var kind string
	switch {
	case p.NamespaceSelector != nil && p.PodSelector != nil:
		kind = "namespaceSelector+podSelector"
	case p.NamespaceSelector != nil:
		kind = "namespaceSelector"
	default:
		kind = "podSelector"
	}
	key, nsMatch, podMatch, err := selectorPeer(namespace, p)
	if err != nil {
		return peer{}, err
	}
	if pods, ok := c.peers[key]; ok {
		return peer{kind: kind, pods: pods}, nil
	}
	e := c.engine
	pods := newBitset(len(e.endpoints))
	nsMatches := map[string]bool{}
	for i, ep := range e.endpoints {
		if !ep.Policed() {
			continue
		}
		in, seen := nsMatches[ep.Namespace]
		if !seen {
			in = nsMatch(ep.Namespace, c.nsLabels[ep.Namespace])
			nsMatches[ep.Namespace] = in
		}
		if in && podMatch(labels.Set(ep.Labels)) {
			pods.set(i)
		}
	}
	c.peers[key] = pods
	return peer{kind: kind, pods: pods}, nil
}

// selectorPeer returns a canonical key for a selector peer and the two tests
// it applies: to the pod's namespace and to the pod's labels.
func selectorPeer(namespace string, p networkingv1.NetworkPolicyPeer) (string, func(string, labels.Set) bool, func(labels.Labels) bool, error) {
	podSel := labels.Everything()
	if p.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(p.PodSelector)
		if err != nil {
			return "", nil, nil, fmt.Errorf("podSelector: %w", err)
		}
		podSel = s
	}
	if p.NamespaceSelector == nil {
		key := "ns=" + namespace + "|pods=" + podSel.String()
		return key, func(ns string, _ labels.Set) bool { return ns == namespace }, podSel.Matches, nil
	}
	nsSel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
	if err != nil {
		return "", nil, nil, fmt.Errorf("namespaceSelector: %w", err)
	}
	key := "nsSelector=" + nsSel.String() + "|pods=" + podSel.String()
	return key, func(_ string, l labels.Set) bool { return nsSel.Matches(l) }, podSel.Matches, nil
}

func compileIPBlock(b *networkingv1.IPBlock) (*ipBlock, error) {
	cidr, err := parsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("ipBlock.cidr: %w", err)
	}
	out := &ipBlock{cidr: cidr}
	for i, s := range b.Except {
		e, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("ipBlock.except[%d]: %w", i, err)
		}
		out.except = append(out.except, e)
	}
	return out, nil
}

// parsePrefix parses a CIDR and masks it to its network address.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR: %w", err)
	}
	return p.Masked(), nil
}

func compilePort(p networkingv1.NetworkPolicyPort) port {
	out := port{protocol: corev1.ProtocolTCP}
	if p.Protocol != nil {
		out.protocol = *p.Protocol
	}
	switch {
	case p.Port == nil:
		out.any = true
	case p.Port.Type == intstr.String:
		out.name = p.Port.StrVal
	default:
		out.from, out.to = p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			out.to = *p.EndPort
		}
	}
	return out
}
