// Package compiler turns the NetworkPolicies of a cluster into the verdict
// data one node enforces for its own pods: which of them are isolated per
// direction, and which (local, remote, protocol, port) combinations are
// allowed. The result is flat: every policy, rule and peer is already
// resolved to addresses and ports, so the data path looks a packet up once
// per kind of entry whatever the number of policies.
//
// Semantics (the NetworkPolicy API, with the API server's defaulting):
//   - a pod is isolated for a direction when a policy of its namespace selects
//     it with that direction in its policyTypes (Ingress, plus Egress when
//     egress rules exist, if policyTypes is empty); rules of a direction a
//     policy does not list are ignored;
//   - allowed traffic is the union of the rules of every selecting policy;
//   - a rule without peers matches every address, without ports every
//     protocol and port; a port without a number means every port of its
//     protocol; endPort makes a range;
//   - podSelector alone picks pods of the policy's namespace,
//     namespaceSelector alone every pod of the matching namespaces, both
//     together the pods matching both; every namespace carries the label
//     kubernetes.io/metadata.name with its name, as the API server ensures;
//   - ipBlock matches any address in its CIDR and outside its excepts, pod
//     addresses included;
//   - a named port is resolved on the destination pod's containers (the local
//     pod for ingress, the remote pod for egress, so an egress named port
//     never matches an address that is not a pod);
//   - a pod always reaches itself.
//
// Pods without an address yet, finished pods and host-network pods are
// neither enforced nor matched by selectors.
package compiler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// Input is what the compiler reads: the node whose pods it enforces and the
// cluster's namespaces, pods and policies. The objects are only read.
type Input struct {
	Node       string
	Namespaces []*corev1.Namespace
	Pods       []*corev1.Pod
	Policies   []*networkingv1.NetworkPolicy
}

// IP protocol numbers of the protocols NetworkPolicy knows.
const (
	protocolTCP  = 6
	protocolUDP  = 17
	protocolSCTP = 132
)

// Compile computes the ruleset of in.Node. A peer or port that does not
// parse (the API server rejects those, so only a broken source produces them)
// is left out, which can only deny more; each one is reported in the returned
// error, next to a usable ruleset. A policy whose podSelector does not parse
// cannot be left out that way: the pods it isolates are unknown, and a
// ruleset without it would open them. It is reported as an
// *UnenforceableError (see Unenforceable), and the ruleset must not be
// programmed.
func Compile(in Input) (*Ruleset, error) {
	c := newCompilation(in)
	for _, np := range in.Policies {
		c.addPolicy(np)
	}
	return c.finish(), errors.Join(c.problems...)
}

// UnenforceableError names a policy the compiler could not apply at all.
type UnenforceableError struct {
	Namespace, Name string
	Err             error
}

func (e *UnenforceableError) Error() string {
	return fmt.Sprintf("policy %s/%s: spec.podSelector: %v; policy cannot be enforced", e.Namespace, e.Name, e.Err)
}

func (e *UnenforceableError) Unwrap() error { return e.Err }

// Unenforceable returns the unenforceable policies among the problems of a
// Compile error; none means its ruleset is safe to program.
func Unenforceable(err error) []*UnenforceableError {
	var out []*UnenforceableError
	var walk func(error)
	walk = func(err error) {
		if u, ok := err.(*UnenforceableError); ok {
			out = append(out, u)
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// finish sorts and compacts every row, on every CPU: rows are independent,
// and for large nodes this is most of the work.
func (c *compilation) finish() *Ruleset {
	type job struct {
		dir   int
		local netip.Addr
		b     *rowBuilder
	}
	var jobs []job
	for d, rows := range c.rows {
		for ip, b := range rows {
			jobs = append(jobs, job{d, ip, b})
		}
	}
	done := make([]*Row, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), 1+len(jobs)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				done[i] = jobs[i].b.row()
			}
		}()
	}
	wg.Wait()
	out := NewRuleset()
	for i, j := range jobs {
		out.Directions[j.dir][j.local] = done[i]
	}
	return out
}

// rowBuilder collects the entries of a row in any order, with duplicates,
// and overlapping rects.
type rowBuilder struct {
	anyPort []netip.Addr
	ports   []PortEntry
	rects   []rect
}

func (b *rowBuilder) row() *Row {
	return &Row{
		AnyPort: sortedAddrs(b.anyPort),
		Ports:   sortedPorts(b.ports),
		Ranges:  disjointRectangles(b.rects),
	}
}

// sortedAddrs sorts and compacts addresses of one family. IPv4 addresses,
// by far the most common, are sorted as integers.
func sortedAddrs(addrs []netip.Addr) []netip.Addr {
	if len(addrs) == 0 || !addrs[0].Is4() {
		slices.SortFunc(addrs, netip.Addr.Compare)
		return slices.Compact(addrs)
	}
	keys := make([]uint32, len(addrs))
	for i, a := range addrs {
		b := a.As4()
		keys[i] = binary.BigEndian.Uint32(b[:])
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	out := addrs[:len(keys)]
	for i, k := range keys {
		out[i] = addrFromUint32(k)
	}
	return out
}

func addrFromUint32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// sortedPorts sorts and compacts entries whose remotes are of one family;
// an IPv4 entry packs into one integer (address, protocol, port) that sorts
// in PortEntry.Compare order.
func sortedPorts(ports []PortEntry) []PortEntry {
	if len(ports) == 0 || !ports[0].Remote.Is4() {
		slices.SortFunc(ports, PortEntry.Compare)
		return slices.Compact(ports)
	}
	keys := make([]uint64, len(ports))
	for i, p := range ports {
		b := p.Remote.As4()
		keys[i] = uint64(binary.BigEndian.Uint32(b[:]))<<24 | uint64(p.Protocol)<<16 | uint64(p.Port)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	out := ports[:len(keys)]
	for i, k := range keys {
		out[i] = PortEntry{
			Remote:   addrFromUint32(uint32(k >> 24)),
			Protocol: uint8(k >> 16),
			Port:     uint16(k),
		}
	}
	return out
}

// pod is an eligible pod: it has an address, is not on the host network and
// has not finished.
type pod struct {
	namespace, name string
	labels          labels.Set
	ips             []netip.Addr
	ports           []containerPort
	local           bool
}

type containerPort struct {
	name     string
	protocol uint8
	number   uint16
}

// resolve returns the numbers the pod declares under a port name.
func (p *pod) resolve(name string, protocol uint8) []uint16 {
	var out []uint16
	for _, cp := range p.ports {
		if cp.name == name && cp.protocol == protocol {
			out = append(out, cp.number)
		}
	}
	return out
}

type compilation struct {
	// rows holds a row builder per direction and isolated local address.
	rows      [2]map[netip.Addr]*rowBuilder
	nsLabels  map[string]labels.Set
	podsByNS  map[string][]*pod
	localByNS map[string][]*pod
	// byPortName indexes pods by the names of their container ports.
	byPortName map[string][]*pod
	// peers caches the pods matched by selector peers, by canonical key.
	peers    map[string][]*pod
	problems []error
}

func newCompilation(in Input) *compilation {
	c := &compilation{
		rows:       [2]map[netip.Addr]*rowBuilder{{}, {}},
		nsLabels:   map[string]labels.Set{},
		podsByNS:   map[string][]*pod{},
		localByNS:  map[string][]*pod{},
		byPortName: map[string][]*pod{},
		peers:      map[string][]*pod{},
	}
	for _, ns := range in.Namespaces {
		set := labels.Set{}
		for k, v := range ns.Labels {
			set[k] = v
		}
		set[corev1.LabelMetadataName] = ns.Name
		c.nsLabels[ns.Name] = set
	}
	for _, p := range in.Pods {
		ep := eligiblePod(p, in.Node)
		if ep == nil {
			continue
		}
		c.podsByNS[ep.namespace] = append(c.podsByNS[ep.namespace], ep)
		if ep.local {
			c.localByNS[ep.namespace] = append(c.localByNS[ep.namespace], ep)
		}
		seen := map[string]bool{}
		for _, cp := range ep.ports {
			if cp.name != "" && !seen[cp.name] {
				seen[cp.name] = true
				c.byPortName[cp.name] = append(c.byPortName[cp.name], ep)
			}
		}
	}
	return c
}

func eligiblePod(p *corev1.Pod, node string) *pod {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	out := &pod{namespace: p.Namespace, name: p.Name, labels: labels.Set(p.Labels), local: p.Spec.NodeName == node}
	seen := map[netip.Addr]bool{}
	addIP := func(s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil || seen[ip.Unmap()] {
			return
		}
		seen[ip.Unmap()] = true
		out.ips = append(out.ips, ip.Unmap())
	}
	for _, ip := range p.Status.PodIPs {
		addIP(ip.IP)
	}
	addIP(p.Status.PodIP)
	if len(out.ips) == 0 {
		return nil
	}
	addPorts := func(ports []corev1.ContainerPort) {
		for _, cp := range ports {
			proto, ok := protocolNumber(cp.Protocol)
			if !ok || cp.ContainerPort < 1 || cp.ContainerPort > lastPort {
				continue
			}
			out.ports = append(out.ports, containerPort{name: cp.Name, protocol: proto, number: uint16(cp.ContainerPort)})
		}
	}
	for _, ctr := range p.Spec.Containers {
		addPorts(ctr.Ports)
	}
	for i := range p.Spec.InitContainers {
		if ctr := &p.Spec.InitContainers[i]; matrix.IsSidecar(ctr) {
			addPorts(ctr.Ports) // sidecars serve for the pod's whole life
		}
	}
	return out
}

// protocolNumber maps a Kubernetes protocol (TCP when empty) to its IP
// protocol number.
func protocolNumber(p corev1.Protocol) (uint8, bool) {
	switch p {
	case "", corev1.ProtocolTCP:
		return protocolTCP, true
	case corev1.ProtocolUDP:
		return protocolUDP, true
	case corev1.ProtocolSCTP:
		return protocolSCTP, true
	}
	return 0, false
}

// isolation returns the directions a policy isolates, with the API server's
// defaulting of an empty policyTypes.
func isolation(np *networkingv1.NetworkPolicy) [2]bool {
	var out [2]bool
	if len(np.Spec.PolicyTypes) == 0 {
		return [2]bool{true, len(np.Spec.Egress) > 0}
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			out[Ingress] = true
		case networkingv1.PolicyTypeEgress:
			out[Egress] = true
		}
	}
	return out
}

func (c *compilation) problem(np *networkingv1.NetworkPolicy, format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf("policy %s/%s: %s", np.Namespace, np.Name, fmt.Sprintf(format, args...)))
}

func (c *compilation) addPolicy(np *networkingv1.NetworkPolicy) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		c.problems = append(c.problems, &UnenforceableError{Namespace: np.Namespace, Name: np.Name, Err: err})
		return
	}
	var selected []*pod
	for _, p := range c.localByNS[np.Namespace] {
		if sel.Matches(p.labels) {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return
	}
	isolates := isolation(np)
	for d := range isolates {
		if !isolates[d] {
			continue
		}
		dir := Direction(d)
		for _, local := range selected {
			for _, ip := range local.ips {
				if c.rows[d][ip] == nil {
					// isolated, and reaching itself
					c.rows[d][ip] = &rowBuilder{anyPort: []netip.Addr{ip}}
				}
			}
		}
		for _, r := range c.rules(np, dir) {
			for _, local := range selected {
				c.contribute(dir, local, r)
			}
		}
	}
}

// rule is a compiled rule: its peers resolved to pods and address ranges.
type rule struct {
	everyAddress bool
	pods         []*pod
	// blocks holds the ipBlock ranges (cidr minus excepts) of each family:
	// index 0 for IPv4, 1 for IPv6.
	blocks [2][]addrRange
	// ports is empty when the rule has none: every protocol and port.
	ports []portSpec
}

// portSpec is a port of a rule: a number range (a missing number is every
// port of the protocol) or a name.
type portSpec struct {
	protocol    uint8
	first, last uint16
	name        string
}

func familyIndex(ip netip.Addr) int {
	if ip.Is4() {
		return 0
	}
	return 1
}

func (c *compilation) rules(np *networkingv1.NetworkPolicy, dir Direction) []rule {
	type source struct {
		peers []networkingv1.NetworkPolicyPeer
		ports []networkingv1.NetworkPolicyPort
	}
	var sources []source
	if dir == Ingress {
		for _, r := range np.Spec.Ingress {
			sources = append(sources, source{peers: r.From, ports: r.Ports})
		}
	} else {
		for _, r := range np.Spec.Egress {
			sources = append(sources, source{peers: r.To, ports: r.Ports})
		}
	}
	out := make([]rule, 0, len(sources))
	for i, s := range sources {
		field := fmt.Sprintf("spec.%s[%d]", dir, i)
		r := rule{everyAddress: len(s.peers) == 0}
		seen := map[*pod]bool{}
		for j, peer := range s.peers {
			if peer.IPBlock != nil {
				c.addBlock(np, &r, peer.IPBlock, fmt.Sprintf("%s.peers[%d].ipBlock", field, j))
				continue
			}
			pods, err := c.selectorPeer(np.Namespace, peer)
			if err != nil {
				c.problem(np, "%s.peers[%d]: %v; peer ignored", field, j, err)
				continue
			}
			for _, p := range pods {
				if !seen[p] {
					seen[p] = true
					r.pods = append(r.pods, p)
				}
			}
		}
		for j, p := range s.ports {
			spec, ok := compilePort(p)
			if !ok {
				c.problem(np, "%s.ports[%d]: unsupported port; port ignored", field, j)
				continue
			}
			r.ports = append(r.ports, spec)
		}
		if len(s.ports) > 0 && len(r.ports) == 0 {
			continue // every port was unusable: the rule allows nothing
		}
		out = append(out, r)
	}
	return out
}

func (c *compilation) addBlock(np *networkingv1.NetworkPolicy, r *rule, b *networkingv1.IPBlock, field string) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		c.problem(np, "%s.cidr: %v; peer ignored", field, err)
		return
	}
	ranges := []addrRange{prefixRange(cidr)}
	for k, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			c.problem(np, "%s.except[%d]: %v; peer ignored", field, k, err)
			return
		}
		if ex.Addr().Is4() == cidr.Addr().Is4() {
			ranges = subtract(ranges, prefixRange(ex))
		}
	}
	f := familyIndex(cidr.Addr())
	r.blocks[f] = append(r.blocks[f], ranges...)
}

// selectorPeer returns the pods a podSelector/namespaceSelector peer matches.
func (c *compilation) selectorPeer(namespace string, peer networkingv1.NetworkPolicyPeer) ([]*pod, error) {
	podSel := labels.Everything()
	if peer.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		podSel = s
	}
	var nsSel labels.Selector
	key := "namespace=" + namespace + "|pods=" + podSel.String()
	if peer.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		nsSel = s
		key = "namespaces=" + nsSel.String() + "|pods=" + podSel.String()
	}
	if pods, ok := c.peers[key]; ok {
		return pods, nil
	}
	var pods []*pod
	matchIn := func(ns string) {
		for _, p := range c.podsByNS[ns] {
			if podSel.Matches(p.labels) {
				pods = append(pods, p)
			}
		}
	}
	if nsSel == nil {
		matchIn(namespace)
	} else {
		for ns := range c.podsByNS {
			nsLabels, ok := c.nsLabels[ns]
			if !ok {
				nsLabels = labels.Set{corev1.LabelMetadataName: ns}
			}
			if nsSel.Matches(nsLabels) {
				matchIn(ns)
			}
		}
	}
	c.peers[key] = pods
	return pods, nil
}

func compilePort(p networkingv1.NetworkPolicyPort) (portSpec, bool) {
	var proto corev1.Protocol
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	number, ok := protocolNumber(proto)
	if !ok {
		return portSpec{}, false
	}
	spec := portSpec{protocol: number}
	switch {
	case p.Port == nil:
		spec.first, spec.last = 0, lastPort
	case p.Port.Type == intstr.String:
		spec.name = p.Port.StrVal
	default:
		first, last := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			last = *p.EndPort
		}
		if first < 1 || last > lastPort || last < first {
			return portSpec{}, false
		}
		spec.first, spec.last = uint16(first), uint16(last)
	}
	return spec, true
}

// contribute adds what rule r allows for local pod l in direction dir.
func (c *compilation) contribute(dir Direction, l *pod, r rule) {
	// Ingress named ports are resolved on the local pod, the destination.
	ports := r.ports
	if dir == Ingress {
		ports = resolveOn(l, r.ports)
		if len(r.ports) > 0 && len(ports) == 0 {
			return
		}
	}
	for _, local := range l.ips {
		f := familyIndex(local)
		row := c.rows[dir][local]
		addRect := func(remote addrRange, s span) {
			row.rects = append(row.rects, rect{remote: remote, ports: s})
		}
		for _, remote := range r.pods {
			for _, rip := range remote.ips {
				if familyIndex(rip) != f {
					continue
				}
				if len(ports) == 0 {
					row.anyPort = append(row.anyPort, rip)
					continue
				}
				for _, p := range ports {
					if p.name != "" {
						// egress: resolved on the remote pod, the destination
						for _, n := range remote.resolve(p.name, p.protocol) {
							row.ports = append(row.ports, PortEntry{Remote: rip, Protocol: p.protocol, Port: n})
						}
						continue
					}
					if p.first == p.last {
						row.ports = append(row.ports, PortEntry{Remote: rip, Protocol: p.protocol, Port: p.first})
						continue
					}
					addRect(addrRange{first: rip, last: rip}, protocolPorts(p.protocol, p.first, p.last))
				}
			}
		}
		blocks := r.blocks[f]
		if r.everyAddress {
			blocks = []addrRange{everyAddress(local.Is4())}
		}
		for _, b := range blocks {
			if len(ports) == 0 {
				addRect(b, everyProtocolAndPort())
				continue
			}
			for _, p := range ports {
				if p.name == "" {
					addRect(b, protocolPorts(p.protocol, p.first, p.last))
					continue
				}
				// egress named port: only pods in the block can match
				for _, remote := range c.byPortName[p.name] {
					for _, rip := range remote.ips {
						if familyIndex(rip) != f || !b.contains(rip) {
							continue
						}
						for _, n := range remote.resolve(p.name, p.protocol) {
							row.ports = append(row.ports, PortEntry{Remote: rip, Protocol: p.protocol, Port: n})
						}
					}
				}
			}
		}
	}
}

// resolveOn replaces the named ports of ports by the numbers pod p declares
// for them, dropping the names p does not declare.
func resolveOn(p *pod, ports []portSpec) []portSpec {
	out := make([]portSpec, 0, len(ports))
	for _, spec := range ports {
		if spec.name == "" {
			out = append(out, spec)
			continue
		}
		for _, n := range p.resolve(spec.name, spec.protocol) {
			out = append(out, portSpec{protocol: spec.protocol, first: n, last: n})
		}
	}
	return out
}
