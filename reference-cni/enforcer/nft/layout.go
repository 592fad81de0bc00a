package nft

import (
	"fmt"

	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
)

// TableName is the nftables table the enforcer owns, in the inet family.
const TableName = "netpolcheck"

const forwardChain = "pod-forward"

// family is an address family of the data path: its nft address type and the
// payload expression of its addresses.
type family struct {
	suffix   string // set and chain name suffix
	addrType string
	match    string // "ip" or "ip6"
}

func families() [2]family {
	return [2]family{
		{suffix: "ip4", addrType: "ipv4_addr", match: "ip"},
		{suffix: "ip6", addrType: "ipv6_addr", match: "ip6"},
	}
}

func familyIndex(is4 bool) int {
	if is4 {
		return 0
	}
	return 1
}

// kind is one of the four sets each direction and family has.
type kind int

const (
	// isolated: local pod addresses isolated in the direction.
	isolated kind = iota
	// anyPort: local . remote, allowed on every protocol and port.
	anyPort
	// ports: local . remote . protocol . port, exact.
	ports
	// ranges: local . remote range . protocol range . port range, disjoint
	// intervals per local address (a pipapo set).
	ranges
)

func kinds() [4]kind { return [4]kind{isolated, anyPort, ports, ranges} }

func (k kind) String() string {
	return [...]string{"isolated", "any", "ports", "ranges"}[k]
}

func setName(dir compiler.Direction, k kind, f family) string {
	return fmt.Sprintf("%s-%s-%s", dir, k, f.suffix)
}

func chainName(dir compiler.Direction, f family) string {
	return fmt.Sprintf("%s-%s", dir, f.suffix)
}

func set(dir compiler.Direction, k kind, f family) *knftables.Set {
	s := &knftables.Set{Name: setName(dir, k, f)}
	tuple := f.addrType + " . " + f.addrType + " . inet_proto . inet_service"
	switch k {
	case isolated:
		s.Type = f.addrType
	case anyPort:
		s.Type = f.addrType + " . " + f.addrType
	case ports:
		s.Type = tuple
	case ranges:
		s.Type = tuple
		s.Flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	return s
}

// addrFields returns the expressions of the local and remote address of a
// packet seen in a direction: ingress traffic is destined to the local pod,
// egress traffic comes from it.
func addrFields(dir compiler.Direction, f family) (local, remote string) {
	if dir == compiler.Ingress {
		return f.match + " daddr", f.match + " saddr"
	}
	return f.match + " saddr", f.match + " daddr"
}

// objects returns the table's fixed objects, in creation order: sets, then
// the per-direction chains, then the base chain that jumps to them.
//
//	chain pod-forward (hook forward):
//	  ct direction reply ct state established,related accept
//	  ip saddr @egress-isolated-ip4 jump egress-ip4      (and ip6)
//	  ip daddr @ingress-isolated-ip4 jump ingress-ip4    (and ip6)
//	chain egress-ip4:
//	  ip saddr . ip daddr @egress-any-ip4 return
//	  ip saddr . ip daddr . meta l4proto . th dport @egress-ports-ip4 return
//	  ip saddr . ip daddr . meta l4proto . th dport @egress-ranges-ip4 return
//	  counter drop
//
// Egress is checked before ingress, and both apply to traffic between two
// pods of the node. Every lookup is one set lookup, whatever the number of
// policies.
//
// Only replies ride on conntrack: every packet in a connection's original
// direction is checked against the current sets. A policy change therefore
// applies at once to established connections too, and a new flow whose
// 5-tuple matches a stale conntrack entry (a UDP probe whose random source
// port was used by an allowed probe seconds earlier) is judged as new.
func objects() (sets []*knftables.Set, chains []*knftables.Chain, rules []*knftables.Rule) {
	base := &knftables.Chain{
		Name:     forwardChain,
		Type:     knftables.PtrTo(knftables.FilterType),
		Hook:     knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority),
		Policy:   knftables.PtrTo(knftables.AcceptPolicy),
		Comment:  knftables.PtrTo("NetworkPolicy enforcement for the pods of this node"),
	}
	rules = append(rules, &knftables.Rule{
		Chain:   forwardChain,
		Rule:    "ct direction reply ct state established,related accept",
		Comment: knftables.PtrTo("replies of allowed connections"),
	})
	for _, dir := range []compiler.Direction{compiler.Egress, compiler.Ingress} {
		for _, f := range families() {
			for _, k := range kinds() {
				sets = append(sets, set(dir, k, f))
			}
			local, remote := addrFields(dir, f)
			chain := chainName(dir, f)
			chains = append(chains, &knftables.Chain{Name: chain})
			rules = append(rules, &knftables.Rule{
				Chain: forwardChain,
				Rule:  knftables.Concat(local, "@"+setName(dir, isolated, f), "jump", chain),
			})
			tuple := knftables.Concat(local, ".", remote, ". meta l4proto . th dport")
			rules = append(rules,
				&knftables.Rule{Chain: chain, Rule: knftables.Concat(local, ".", remote, "@"+setName(dir, anyPort, f), "return")},
				&knftables.Rule{Chain: chain, Rule: knftables.Concat(tuple, "@"+setName(dir, ports, f), "return")},
				&knftables.Rule{Chain: chain, Rule: knftables.Concat(tuple, "@"+setName(dir, ranges, f), "return")},
				&knftables.Rule{
					Chain:   chain,
					Rule:    "counter drop",
					Comment: knftables.PtrTo(fmt.Sprintf("%s not allowed by any NetworkPolicy", dir)),
				},
			)
		}
	}
	return sets, append([]*knftables.Chain{base}, chains...), rules
}
