package routes

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Route is one host-gw route the agent wants: a peer node's pod CIDR via
// that node's InternalIP of the same family.
type Route struct {
	Dst  netip.Prefix
	Via  netip.Addr
	Node string
}

// String renders the route for logs and errors.
func (r Route) String() string { return fmt.Sprintf("%s via %s (node %s)", r.Dst, r.Via, r.Node) }

// Skipped explains why a node, or one of its pod CIDRs, gets no route.
type Skipped struct {
	Node   string
	Reason string
}

// DesiredRoutes returns the routes node self needs to reach every other
// node's pods, sorted by destination, and the nodes or CIDRs it had to skip
// (no pod CIDR yet, no InternalIP of the CIDR's family, unparsable values).
func DesiredRoutes(self string, nodes []*corev1.Node) ([]Route, []Skipped) {
	var routes []Route
	var skipped []Skipped
	for _, node := range nodes {
		if node.Name == self {
			continue
		}
		cidrs, err := PodCIDRs(node)
		if err != nil {
			skipped = append(skipped, Skipped{Node: node.Name, Reason: err.Error()})
			continue
		}
		if len(cidrs) == 0 {
			skipped = append(skipped, Skipped{Node: node.Name, Reason: "no pod CIDR assigned yet"})
			continue
		}
		for _, cidr := range cidrs {
			via, ok := internalIP(node, cidr.Addr().Is4())
			if !ok {
				skipped = append(skipped, Skipped{Node: node.Name, Reason: fmt.Sprintf("no InternalIP of the family of pod CIDR %s", cidr)})
				continue
			}
			routes = append(routes, Route{Dst: cidr, Via: via, Node: node.Name})
		}
	}
	slices.SortFunc(routes, func(a, b Route) int {
		return cmp.Or(a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()))
	})
	return routes, skipped
}

// PodCIDRs returns a node's pod CIDRs from spec.podCIDRs, or from the older
// single spec.podCIDR when the list is empty.
func PodCIDRs(node *corev1.Node) ([]netip.Prefix, error) {
	texts := node.Spec.PodCIDRs
	if len(texts) == 0 && node.Spec.PodCIDR != "" {
		texts = []string{node.Spec.PodCIDR}
	}
	cidrs := make([]netip.Prefix, 0, len(texts))
	for _, text := range texts {
		cidr, err := netip.ParsePrefix(text)
		if err != nil {
			return nil, fmt.Errorf("node %s: pod CIDR %q: %w", node.Name, text, err)
		}
		cidrs = append(cidrs, cidr.Masked())
	}
	return cidrs, nil
}

// internalIP returns the node's first InternalIP of the wanted family.
func internalIP(node *corev1.Node, v4 bool) (netip.Addr, bool) {
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		addr, err := netip.ParseAddr(a.Address)
		if err == nil && addr.Unmap().Is4() == v4 {
			return addr.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
