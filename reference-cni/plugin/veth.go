package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
)

// dumpAttempts bounds the retries of a netlink dump that the kernel
// interrupted because the table changed meanwhile (likely while many pods
// are being added at once).
const dumpAttempts = 5

// attachment is one pod interface: its owner, its addresses (one per range,
// in range order) and how its veth is built.
type attachment struct {
	network string
	owner   ipam.Owner
	ranges  []netip.Prefix
	addrs   []netip.Addr
	mtu     int
}

func (a attachment) hostVethName() string {
	return HostVethName(a.owner.ContainerID, a.owner.IfName)
}

// createVeth creates the veth pair from the node namespace with its pod end,
// already named after the CNI interface, inside the pod namespace. A node end
// left over from an interrupted ADD of the same attachment is replaced.
func createVeth(node *netlink.Handle, podNS netns.NsHandle, a attachment) (netlink.Link, error) {
	name := a.hostVethName()
	if err := deleteHostVeth(node, a.network, a.owner); err != nil {
		return nil, err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: a.mtu},
		PeerName:      a.owner.IfName,
		PeerNamespace: netlink.NsFd(int(podNS)),
		PeerMTU:       uint32(a.mtu),
	}
	if err := node.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("creating veth %s with peer %s in the pod: %w", name, a.owner.IfName, err)
	}
	host, err := node.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("finding new veth %s: %w", name, err)
	}
	// The kernel ignores an alias given at creation, so set it now.
	if err := node.LinkSetAlias(host, vethAlias(a.network, a.owner)); err != nil {
		return nil, fmt.Errorf("marking veth %s as %s's: %w", name, a.owner, err)
	}
	host.Attrs().Alias = vethAlias(a.network, a.owner)
	return host, nil
}

// deleteHostVeth deletes the node end of an attachment's veth, which also
// deletes the pod end. A missing veth, or one owned by another attachment
// (a hash collision), is left alone; one without an alias is an ADD that
// stopped between creating and marking it, and is deleted.
func deleteHostVeth(node *netlink.Handle, network string, owner ipam.Owner) error {
	name := HostVethName(owner.ContainerID, owner.IfName)
	link, err := node.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up veth %s: %w", name, err)
	}
	if alias := link.Attrs().Alias; alias != "" && alias != vethAlias(network, owner) {
		return nil
	}
	if err := node.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting veth %s: %w", name, err)
	}
	return nil
}

// configurePod addresses the pod end and routes everything through the
// node's gateway address: "gateway dev eth0 scope link", then
// "default via gateway". It also brings up the pod's loopback.
func configurePod(pod *netlink.Handle, a attachment) (netlink.Link, error) {
	lo, err := pod.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("finding the pod's loopback: %w", err)
	}
	if err := pod.LinkSetUp(lo); err != nil {
		return nil, fmt.Errorf("bringing up the pod's loopback: %w", err)
	}
	eth, err := pod.LinkByName(a.owner.IfName)
	if err != nil {
		return nil, fmt.Errorf("finding %s in the pod: %w", a.owner.IfName, err)
	}
	for _, addr := range a.addrs {
		if err := pod.AddrAdd(eth, hostAddr(addr)); err != nil {
			return nil, fmt.Errorf("adding %s to %s in the pod: %w", addr, a.owner.IfName, err)
		}
	}
	if err := pod.LinkSetUp(eth); err != nil {
		return nil, fmt.Errorf("bringing up %s in the pod: %w", a.owner.IfName, err)
	}
	for _, r := range a.ranges {
		gw := ipam.Gateway(r)
		toGateway := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: hostPrefix(gw), Scope: netlink.SCOPE_LINK}
		if err := pod.RouteAdd(toGateway); err != nil {
			return nil, fmt.Errorf("adding route to gateway %s in the pod: %w", gw, err)
		}
		viaGateway := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: defaultPrefix(gw), Gw: net.IP(gw.AsSlice())}
		if err := pod.RouteAdd(viaGateway); err != nil {
			return nil, fmt.Errorf("adding default route via %s in the pod: %w", gw, err)
		}
	}
	return eth, nil
}

// configureHost gives the node end the gateway address of every range (as a
// host address, so it creates no subnet route) and routes each pod address
// to it.
func configureHost(node *netlink.Handle, host netlink.Link, a attachment) error {
	name := host.Attrs().Name
	for _, r := range a.ranges {
		gw := hostAddr(ipam.Gateway(r))
		if gw.IP.To4() == nil {
			gw.Flags |= unix.IFA_F_NOPREFIXROUTE
		}
		if err := node.AddrAdd(host, gw); err != nil {
			return fmt.Errorf("adding gateway %s to %s: %w", gw.IPNet, name, err)
		}
	}
	if slices.ContainsFunc(a.ranges, func(r netip.Prefix) bool { return r.Addr().Is6() }) {
		if err := disableDAD(name); err != nil {
			return err
		}
	}
	if err := node.LinkSetUp(host); err != nil {
		return fmt.Errorf("bringing up %s: %w", name, err)
	}
	for _, addr := range a.addrs {
		if err := node.RouteAdd(hostRoute(host, addr)); err != nil {
			return fmt.Errorf("adding route to pod %s via %s: %w", addr, name, err)
		}
	}
	return nil
}

// disableDAD turns off IPv6 duplicate address detection on a node-side
// veth. While the veth's link-local address is tentative the node does not
// answer or forward the pod's first IPv6 packets, which costs every new pod
// one or two seconds of SYN retransmissions; a point-to-point veth has no
// other host that could hold a duplicate.
func disableDAD(ifName string) error {
	path := filepath.Join("/proc/sys/net/ipv6/conf", ifName, "accept_dad")
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("disabling DAD on %s: %w", ifName, err)
	}
	return nil
}

// verifyHost checks the node end of an attachment: the veth, its gateway
// addresses and the routes to the pod addresses.
func verifyHost(node *netlink.Handle, a attachment) (netlink.Link, error) {
	name := a.hostVethName()
	host, err := node.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("node-side veth %s: %w", name, err)
	}
	if _, ok := host.(*netlink.Veth); !ok {
		return nil, fmt.Errorf("node-side link %s is a %s, not a veth", name, host.Type())
	}
	if alias := host.Attrs().Alias; alias != vethAlias(a.network, a.owner) {
		return nil, fmt.Errorf("node-side veth %s belongs to %q, not to %s", name, alias, a.owner)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("node-side veth %s is down", name)
	}
	var gateways []netip.Addr
	for _, r := range a.ranges {
		gateways = append(gateways, ipam.Gateway(r))
	}
	if err := verifyAddrs(node, host, gateways); err != nil {
		return nil, fmt.Errorf("node-side veth %s: %w", name, err)
	}
	for _, addr := range a.addrs {
		routes, err := node.RouteGet(net.IP(addr.AsSlice()))
		if err != nil {
			return nil, fmt.Errorf("route to pod %s: %w", addr, err)
		}
		if len(routes) == 0 || routes[0].LinkIndex != host.Attrs().Index {
			return nil, fmt.Errorf("pod address %s is not routed via %s", addr, name)
		}
	}
	return host, nil
}

// verifyPod checks the pod end: the interface, that it is the peer of the
// node end, its addresses, and its routes through the gateway.
func verifyPod(pod *netlink.Handle, host netlink.Link, a attachment) error {
	ifName := a.owner.IfName
	eth, err := pod.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("pod interface %s: %w", ifName, err)
	}
	if _, ok := eth.(*netlink.Veth); !ok {
		return fmt.Errorf("pod interface %s is a %s, not a veth", ifName, eth.Type())
	}
	if eth.Attrs().ParentIndex != host.Attrs().Index {
		return fmt.Errorf("pod interface %s is not the peer of node-side veth %s", ifName, host.Attrs().Name)
	}
	if eth.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("pod interface %s is down", ifName)
	}
	if err := verifyAddrs(pod, eth, a.addrs); err != nil {
		return fmt.Errorf("pod interface %s: %w", ifName, err)
	}
	routes, err := listRoutes(pod, eth)
	if err != nil {
		return fmt.Errorf("pod routes: %w", err)
	}
	for _, r := range a.ranges {
		gw := ipam.Gateway(r)
		found := slices.ContainsFunc(routes, func(route netlink.Route) bool {
			return isDefault(route.Dst) && route.Gw.Equal(net.IP(gw.AsSlice()))
		})
		if !found {
			return fmt.Errorf("pod has no default route via %s on %s", gw, ifName)
		}
	}
	return nil
}

func verifyAddrs(h *netlink.Handle, link netlink.Link, want []netip.Addr) error {
	var have []netlink.Addr
	err := retryInterruptedDump(func() (err error) {
		have, err = h.AddrList(link, netlink.FAMILY_ALL)
		return err
	})
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	for _, addr := range want {
		found := slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IP.Equal(net.IP(addr.AsSlice())) })
		if !found {
			return fmt.Errorf("address %s missing", addr)
		}
	}
	return nil
}

func listRoutes(h *netlink.Handle, link netlink.Link) ([]netlink.Route, error) {
	var routes []netlink.Route
	err := retryInterruptedDump(func() (err error) {
		routes, err = h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: link.Attrs().Index}, netlink.RT_FILTER_OIF)
		return err
	})
	return routes, err
}

// listLinks lists every link of a namespace.
func listLinks(h *netlink.Handle) ([]netlink.Link, error) {
	var links []netlink.Link
	err := retryInterruptedDump(func() (err error) {
		links, err = h.LinkList()
		return err
	})
	return links, err
}

func retryInterruptedDump(dump func() error) error {
	var err error
	for range dumpAttempts {
		if err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

// hostAddr is addr as a /32 (IPv4) or /128 (IPv6) interface address; IPv6
// addresses skip duplicate address detection, since the plugin owns the
// range and the link has no other hosts.
func hostAddr(addr netip.Addr) *netlink.Addr {
	a := &netlink.Addr{IPNet: hostPrefix(addr)}
	if addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func hostRoute(link netlink.Link, addr netip.Addr) *netlink.Route {
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: hostPrefix(addr)}
	if addr.Is4() {
		route.Scope = netlink.SCOPE_LINK
	}
	return route
}

func hostPrefix(addr netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}
}

func defaultPrefix(sameFamilyAs netip.Addr) *net.IPNet {
	bits := sameFamilyAs.BitLen()
	return &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)}
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}
