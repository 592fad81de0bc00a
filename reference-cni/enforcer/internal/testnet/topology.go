package testnet

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// Topology is a model's endpoints brought up as namespaces: a namespace per
// node, pod and external host.
type Topology struct {
	net       *Net
	Nodes     map[string]*netnstest.Netns
	Endpoints map[string]*Endpoint
}

// Endpoint is a pod or external host of the topology.
type Endpoint struct {
	matrix.Endpoint
	NS *netnstest.Netns
}

// nodeIndex returns k for a node named node<k>.
func nodeIndex(name string) (int, error) {
	k, err := strconv.Atoi(strings.TrimPrefix(name, "node"))
	if err != nil || !strings.HasPrefix(name, "node") || k < 1 || k > 200 {
		return 0, fmt.Errorf("node name %q is not node<k> with 1 <= k <= 200", name)
	}
	return k, nil
}

// Build brings up the model: nodes node<k> (from the pods' Node fields)
// forwarding between their pods, an underlay bridge 10.250.0.0/24 (and
// fd00:10:250::/64) between them with routes to each other's pod CIDRs
// 10.244.k.0/24 and fd00:10:244:k::/64, and the external hosts on their own
// veths from node1 (every other node routes their addresses to node1). Pod
// addresses must lie in their node's pod CIDRs; external hosts may have any
// IPv4 address outside 10.244.0.0/16 (recipes use 172.17.0.0/16): it exists
// only inside these namespaces. No endpoint serves anything yet: see Serve.
func Build(n *Net, m *matrix.Model) (*Topology, error) {
	n.t.Helper()
	topo := &Topology{net: n, Nodes: map[string]*netnstest.Netns{}, Endpoints: map[string]*Endpoint{}}
	var nodes []string
	for _, p := range m.Pods {
		if _, ok := topo.Nodes[p.Node]; ok {
			continue
		}
		if _, err := nodeIndex(p.Node); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		topo.Nodes[p.Node] = nil
		nodes = append(nodes, p.Node)
	}
	if _, ok := topo.Nodes["node1"]; !ok && len(m.Externals) > 0 {
		topo.Nodes["node1"] = nil
		nodes = append(nodes, "node1")
	}
	sort.Strings(nodes)
	for _, name := range nodes {
		ns := n.Namespace(name)
		ns.Sysctl("net.ipv4.ip_forward", "1")
		ns.Sysctl("net.ipv6.conf.all.forwarding", "1")
		topo.Nodes[name] = ns
	}
	if len(nodes) > 1 {
		topo.underlay(nodes, m.Externals)
	}
	for i, ep := range m.Endpoints() {
		e := &Endpoint{Endpoint: ep}
		var err error
		if ep.External {
			err = topo.addExternal(e, i)
		} else {
			err = topo.addPod(e, i)
		}
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
		}
		topo.Endpoints[ep.Name] = e
	}
	return topo, nil
}

func (topo *Topology) underlay(nodes []string, externals []matrix.External) {
	n := topo.net
	ul := n.Namespace("ul")
	ul.IP("link", "add", "br0", "type", "bridge")
	ul.IP("link", "set", "br0", "up")
	for _, name := range nodes {
		k, _ := nodeIndex(name)
		ns := topo.Nodes[name]
		port := fmt.Sprintf("to-%s", name)
		netnstest.Veth(ul, port, ns, "underlay")
		ul.IP("link", "set", port, "master", "br0", "up")
		ns.IP("addr", "add", fmt.Sprintf("10.250.0.%d/24", 10+k), "dev", "underlay")
		ns.IP("-6", "addr", "add", fmt.Sprintf("fd00:10:250::%d/64", 10+k), "dev", "underlay", "nodad")
		ns.IP("link", "set", "underlay", "up")
		for _, other := range nodes {
			if other == name {
				continue
			}
			j, _ := nodeIndex(other)
			ns.IP("route", "add", fmt.Sprintf("10.244.%d.0/24", j), "via", fmt.Sprintf("10.250.0.%d", 10+j))
			ns.IP("-6", "route", "add", fmt.Sprintf("fd00:10:244:%d::/64", j), "via", fmt.Sprintf("fd00:10:250::%d", 10+j))
		}
		if name == "node1" {
			continue
		}
		for _, ext := range externals {
			for _, ip := range ext.IPs {
				ns.IP("route", "add", ip+"/32", "via", "10.250.0.11")
			}
		}
	}
}

// gateway returns the node-side address a pod or external host routes
// through, in ip's family.
func gateway(node int, ip netip.Addr, external bool) string {
	switch {
	case external:
		return "192.0.2.1"
	case ip.Is4():
		return fmt.Sprintf("10.244.%d.1", node)
	default:
		return fmt.Sprintf("fd00:10:244:%d::1", node)
	}
}

// attach creates the endpoint's namespace and its routed veth from node.
func (topo *Topology) attach(e *Endpoint, index int, nodeName string, external bool) error {
	k, err := nodeIndex(nodeName)
	if err != nil {
		return err
	}
	node := topo.Nodes[nodeName]
	e.NS = topo.net.Namespace(fmt.Sprintf("e%d", index))
	host := linkName("npc", node.Name+"/"+e.Name)
	netnstest.Veth(node, host, e.NS, "eth0")
	node.IP("link", "set", host, "up")
	e.NS.IP("link", "set", "eth0", "up")
	for _, ip := range e.IPs {
		gw := gateway(k, ip, external)
		bits, family := "/32", "-4"
		if ip.Is6() {
			bits, family = "/128", "-6"
		}
		gwBits := "/32"
		if strings.Contains(gw, ":") {
			gwBits = "/128"
		}
		node.IP(family, "addr", "add", gw+gwBits, "dev", host, "nodad")
		node.IP(family, "route", "add", ip.String()+bits, "dev", host)
		e.NS.IP(family, "addr", "add", ip.String()+bits, "dev", "eth0", "nodad")
		e.NS.IP(family, "route", "add", gw, "dev", "eth0")
		e.NS.IP(family, "route", "add", "default", "via", gw, "dev", "eth0")
	}
	return nil
}

func (topo *Topology) addPod(e *Endpoint, index int) error {
	k, err := nodeIndex(e.Node)
	if err != nil {
		return err
	}
	for _, ip := range e.IPs {
		cidr := netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", k))
		if ip.Is6() {
			cidr = netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%d::/64", k))
		}
		if !cidr.Contains(ip) {
			return fmt.Errorf("address %s is outside %s, the pod CIDR of %s", ip, cidr, e.Node)
		}
	}
	return topo.attach(e, index, e.Node, false)
}

func (topo *Topology) addExternal(e *Endpoint, index int) error {
	for _, ip := range e.IPs {
		if !ip.Is4() || netip.MustParsePrefix("10.244.0.0/16").Contains(ip) {
			return fmt.Errorf("external address %s is not an IPv4 address outside the pod CIDRs", ip)
		}
	}
	return topo.attach(e, index, "node1", true)
}
