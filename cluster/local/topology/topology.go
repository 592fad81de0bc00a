// Package topology builds the local cluster's network out of network
// namespaces (see docs/network-plan.md):
//
//   - an underlay namespace holding a bridge (10.250.0.1/24) that joins the
//     nodes and routes between them, the pods' ranges and the external hosts;
//   - one namespace per node, on the bridge at 10.250.0.(10+k)/24, forwarding
//     for its pods (10.244.k.0/24), with routes to the external hosts and to
//     the service range (which kube-proxy translates);
//   - one namespace per external host, on a routed point-to-point veth to the
//     underlay, with routes to the cluster's ranges only.
//
// No namespace has a default route and nothing touches the host's own
// namespace, so every packet stays between the project's namespaces.
package topology

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
)

// Ranges of the address plan of docs/network-plan.md.
const (
	// PodRange holds every node's pod range.
	PodRange = "10.244.0.0/16"
	// UnderlayRange holds the node addresses.
	UnderlayRange = "10.250.0.0/24"
)

// The address plan of docs/network-plan.md.
var (
	routerIP      = netip.MustParseAddr("10.250.0.1")
	underlayNet   = netip.MustParsePrefix(UnderlayRange)
	serviceRange  = netip.MustParsePrefix("10.96.0.0/16")
	clusterRanges = []netip.Prefix{
		netip.MustParsePrefix(PodRange), // pods
		serviceRange,                    // services
		underlayNet,                     // nodes
	}
)

// Network is the topology of one local cluster.
type Network struct {
	// Prefix starts every namespace name: "npc-<cluster>-".
	Prefix    string
	Nodes     []Node
	Externals []External
}

// Node is a node namespace.
type Node struct {
	Name    string // Kubernetes node name: node1, node2, ...
	Netns   string
	IP      netip.Addr
	PodCIDR netip.Prefix
}

// External is an external host namespace.
type External struct {
	Name  string
	Netns string
	IPs   []netip.Addr
}

// Underlay returns the underlay namespace's name.
func (n *Network) Underlay() string { return n.Prefix + "underlay" }

// NodeFor returns the node k (1-based) of a cluster with this prefix.
func NodeFor(prefix string, k int) Node {
	return Node{
		Name:    fmt.Sprintf("node%d", k),
		Netns:   fmt.Sprintf("%snode%d", prefix, k),
		IP:      netip.AddrFrom4([4]byte{10, 250, 0, byte(10 + k)}),
		PodCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(k), 0}), 24),
	}
}

// Create builds the underlay and the nodes. On error, whatever was created
// is removed.
func Create(prefix string, nodes int) (_ *Network, err error) {
	if nodes < 1 || nodes > 200 {
		return nil, fmt.Errorf("a local cluster has 1 to 200 nodes, not %d", nodes)
	}
	n := &Network{Prefix: prefix}
	defer func() {
		if err != nil {
			err = errors.Join(err, Delete(prefix))
		}
	}()
	if err := netns.Create(n.Underlay()); err != nil {
		return nil, err
	}
	if err := n.setUpUnderlay(); err != nil {
		return nil, err
	}
	for k := 1; k <= nodes; k++ {
		node := NodeFor(prefix, k)
		if err := n.addNode(node); err != nil {
			return nil, fmt.Errorf("node %s: %w", node.Name, err)
		}
		n.Nodes = append(n.Nodes, node)
	}
	return n, nil
}

// Delete removes every namespace whose name starts with prefix, and with
// them every link and nftables table inside.
func Delete(prefix string) error {
	names, err := netns.List(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, netns.Delete(name))
	}
	return errors.Join(errs...)
}

func (n *Network) setUpUnderlay() error {
	h, err := netns.Handle(n.Underlay())
	if err != nil {
		return err
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("adding the underlay bridge: %w", err)
	}
	if err := h.AddrAdd(br, addr(netip.PrefixFrom(routerIP, underlayNet.Bits()))); err != nil {
		return fmt.Errorf("addressing the underlay bridge: %w", err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("bringing the underlay bridge up: %w", err)
	}
	return netns.Sysctl(n.Underlay(), "net.ipv4.ip_forward", "1")
}

func (n *Network) addNode(node Node) error {
	if err := netns.Create(node.Netns); err != nil {
		return err
	}
	for key, value := range map[string]string{
		"net.ipv4.ip_forward":          "1",
		"net.ipv6.conf.all.forwarding": "1",
		"net.ipv4.conf.all.rp_filter":  "0",
	} {
		if err := netns.Sysctl(node.Netns, key, value); err != nil {
			return err
		}
	}
	u, err := netns.Handle(n.Underlay())
	if err != nil {
		return err
	}
	defer u.Close()
	link, err := n.veth(u, node.Name, node.Netns, "eth0")
	if err != nil {
		return err
	}
	br, err := u.LinkByName("br0")
	if err != nil {
		return fmt.Errorf("finding the underlay bridge: %w", err)
	}
	if err := u.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("attaching %s to the bridge: %w", node.Name, err)
	}
	// The underlay routes the node's pod range to it, for external hosts.
	if err := u.RouteAdd(&netlink.Route{Dst: ipnet(node.PodCIDR), Gw: node.IP.AsSlice()}); err != nil {
		return fmt.Errorf("routing %s via %s: %w", node.PodCIDR, node.Name, err)
	}
	h, err := netns.Handle(node.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("finding eth0: %w", err)
	}
	if err := h.AddrAdd(eth0, addr(netip.PrefixFrom(node.IP, underlayNet.Bits()))); err != nil {
		return fmt.Errorf("addressing eth0: %w", err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bringing eth0 up: %w", err)
	}
	// The node's own connections to ClusterIPs need a route before
	// kube-proxy rewrites their destination (a real node's default route).
	// The underlay has no route for the range, so whatever kube-proxy does
	// not rewrite goes no further.
	if err := h.RouteAdd(&netlink.Route{Dst: ipnet(serviceRange), Gw: routerIP.AsSlice()}); err != nil {
		return fmt.Errorf("routing the service range %s: %w", serviceRange, err)
	}
	return nil
}

// AddExternal creates an external host's namespace with the given
// addresses, routes them from the underlay and every node, and routes the
// cluster's ranges from the host to the underlay.
func (n *Network) AddExternal(name string, ips []netip.Addr) (External, error) {
	ext := External{Name: name, Netns: n.Prefix + "ext-" + shortHash(name), IPs: ips}
	if len(ips) == 0 {
		return ext, fmt.Errorf("external host %s has no address", name)
	}
	for _, ip := range ips {
		if !ip.Is4() {
			return ext, fmt.Errorf("external host %s: only IPv4 addresses are routed in the local cluster, not %s", name, ip)
		}
		for _, r := range clusterRanges {
			if r.Contains(ip) {
				return ext, fmt.Errorf("external host %s: %s lies inside the cluster range %s", name, ip, r)
			}
		}
	}
	if err := netns.Create(ext.Netns); err != nil {
		return ext, err
	}
	if err := n.attachExternal(ext); err != nil {
		return ext, errors.Join(err, netns.Delete(ext.Netns))
	}
	n.Externals = append(n.Externals, ext)
	return ext, nil
}

// attachExternal wires an external host's namespace to the underlay and
// routes it.
func (n *Network) attachExternal(ext External) error {
	u, err := netns.Handle(n.Underlay())
	if err != nil {
		return err
	}
	defer u.Close()
	link, err := n.veth(u, "x"+shortHash(ext.Name), ext.Netns, "eth0")
	if err != nil {
		return err
	}
	h, err := netns.Handle(ext.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("finding eth0 of %s: %w", ext.Name, err)
	}
	for _, ip := range ext.IPs {
		if err := h.AddrAdd(eth0, addr(netip.PrefixFrom(ip, 32))); err != nil {
			return fmt.Errorf("addressing %s: %w", ext.Name, err)
		}
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bringing up eth0 of %s: %w", ext.Name, err)
	}
	// The router is on-link over the point-to-point veth (the underlay
	// answers ARP for its bridge address on every link).
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipnet(netip.PrefixFrom(routerIP, 32)), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("routing the router from %s: %w", ext.Name, err)
	}
	for _, r := range clusterRanges {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipnet(r), Gw: routerIP.AsSlice()}); err != nil {
			return fmt.Errorf("routing %s from %s: %w", r, ext.Name, err)
		}
	}
	for _, ip := range ext.IPs {
		if err := u.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(netip.PrefixFrom(ip, 32)), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("routing %s to %s: %w", ip, ext.Name, err)
		}
	}
	for _, node := range n.Nodes {
		if err := routeVia(node.Netns, ext.IPs, routerIP); err != nil {
			return fmt.Errorf("routing %s from %s: %w", ext.Name, node.Name, err)
		}
	}
	// External hosts reach each other through the underlay too.
	for _, other := range n.Externals {
		if err := routeVia(other.Netns, ext.IPs, routerIP); err != nil {
			return fmt.Errorf("routing %s from %s: %w", ext.Name, other.Name, err)
		}
		if err := routeVia(ext.Netns, other.IPs, routerIP); err != nil {
			return fmt.Errorf("routing %s from %s: %w", other.Name, ext.Name, err)
		}
	}
	return nil
}

func routeVia(ns string, ips []netip.Addr, gw netip.Addr) error {
	h, err := netns.Handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, ip := range ips {
		if err := h.RouteAdd(&netlink.Route{Dst: ipnet(netip.PrefixFrom(ip, 32)), Gw: gw.AsSlice()}); err != nil {
			return err
		}
	}
	return nil
}

// veth creates a veth pair with one end (underlayName) in the underlay,
// brought up and returned, and the other moved into peerNetns and renamed
// peerName.
func (n *Network) veth(u *netlink.Handle, underlayName, peerNetns, peerName string) (netlink.Link, error) {
	peerTmp := "p" + shortHash(peerNetns)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: underlayName}, PeerName: peerTmp}
	if err := u.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("adding veth %s: %w", underlayName, err)
	}
	peer, err := u.LinkByName(peerTmp)
	if err != nil {
		return nil, fmt.Errorf("finding veth peer %s: %w", peerTmp, err)
	}
	target, err := os.Open(netns.Path(peerNetns))
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", peerNetns, err)
	}
	defer target.Close()
	if err := u.LinkSetNsFd(peer, int(target.Fd())); err != nil {
		return nil, fmt.Errorf("moving %s into %s: %w", peerTmp, peerNetns, err)
	}
	h, err := netns.Handle(peerNetns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	moved, err := h.LinkByName(peerTmp)
	if err != nil {
		return nil, fmt.Errorf("finding %s in %s: %w", peerTmp, peerNetns, err)
	}
	if err := h.LinkSetName(moved, peerName); err != nil {
		return nil, fmt.Errorf("renaming %s to %s: %w", peerTmp, peerName, err)
	}
	link, err := u.LinkByName(underlayName)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", underlayName, err)
	}
	if err := u.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bringing %s up: %w", underlayName, err)
	}
	return link, nil
}

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

func addr(p netip.Prefix) *netlink.Addr { return &netlink.Addr{IPNet: ipnet(p)} }

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
