// Package plugin implements netpolcheck-cni, the reference CNI plugin: a
// routed point-to-point veth per pod, with no bridge, so every packet to or
// from a pod crosses the node's forwarding path where the policy enforcer
// sees it.
//
// The pod end (CNI_IFNAME, usually eth0) holds the pod's /32 (and /128)
// address and routes everything via the range's gateway address, the first
// usable address of the node's pod CIDR. The node end, named by
// HostVethName, holds that gateway address as a host address, so it answers
// the pod's ARP and neighbour solicitations itself (no proxy ARP needed, and
// the node has a local address to reach its pods from), and the node routes
// each pod address to its veth. The gateway address sits on every pod veth
// of the node at once; Linux keeps a local route per device, so removing one
// pod does not disturb the others.
//
// The plugin runs in the node's network namespace and enables IPv4 (and
// IPv6) forwarding there on ADD. IPAM is package ipam, with its state under
// the config's dataDir.
package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
)

// ErrAddressPoolExhausted is the plugin-specific CNI error code returned
// when a range has no free address (codes from 100 are plugin-defined).
const ErrAddressPoolExhausted uint = 100

// Funcs returns the plugin's handlers for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
}

// VersionInfo lists the CNI spec versions the plugin speaks. GC and STATUS
// need a 1.1.0 configuration.
func VersionInfo() version.PluginInfo {
	return version.PluginSupports("0.4.0", "1.0.0", "1.1.0")
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	podNS, err := openPodNetns(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	pool, err := conf.pool()
	if err != nil {
		return err
	}
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	done, err := pool.Begin(owner) // a concurrent GC spares this attachment
	if err != nil {
		return err
	}
	defer done()
	addrs, err := pool.Allocate(owner)
	if exhausted := new(ipam.ExhaustedError); errors.As(err, &exhausted) {
		return types.NewError(ErrAddressPoolExhausted, fmt.Sprintf("no free pod address: %v", exhausted), "")
	}
	if err != nil {
		return err
	}
	att := attachment{network: conf.Name, owner: owner, ranges: conf.ranges, addrs: addrs, mtu: conf.MTU}
	result, err := setUp(podNS, args.Netns, att)
	if err != nil {
		// Leave nothing behind: the runtime may never call DEL.
		return errors.Join(fmt.Errorf("adding %s: %w", owner, err), tearDown(pool, att))
	}
	return types.PrintResult(result, conf.CNIVersion)
}

func setUp(podNS netns.NsHandle, podNetnsPath string, a attachment) (*current.Result, error) {
	if err := enableForwarding(a.ranges); err != nil {
		return nil, err
	}
	node, pod, err := handles(podNS)
	if err != nil {
		return nil, err
	}
	defer node.Close()
	defer pod.Close()

	host, err := createVeth(node, podNS, a)
	if err != nil {
		return nil, err
	}
	eth, err := configurePod(pod, a)
	if err != nil {
		return nil, err
	}
	if err := configureHost(node, host, a); err != nil {
		return nil, err
	}

	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: host.Attrs().Name, Mac: host.Attrs().HardwareAddr.String()},
			{Name: eth.Attrs().Name, Mac: eth.Attrs().HardwareAddr.String(), Sandbox: podNetnsPath},
		},
	}
	for i, addr := range a.addrs {
		gw := net.IP(ipam.Gateway(a.ranges[i]).AsSlice())
		result.IPs = append(result.IPs, &current.IPConfig{Interface: current.Int(1), Address: *hostPrefix(addr), Gateway: gw})
		result.Routes = append(result.Routes, &types.Route{Dst: *defaultPrefix(addr), GW: gw})
	}
	return result, nil
}

// tearDown removes an attachment's veth and frees its addresses.
func tearDown(pool *ipam.Pool, a attachment) error {
	node, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer node.Close()
	return errors.Join(deleteHostVeth(node, a.network, a.owner), pool.Release(a.owner))
}

func cmdDel(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	pool, err := conf.pool()
	if err != nil {
		return err
	}
	// The pod namespace may be gone already: deleting the node end of the
	// veth is enough, and both steps succeed when there is nothing to do.
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	if err := tearDown(pool, attachment{network: conf.Name, owner: owner}); err != nil {
		return fmt.Errorf("deleting %s: %w", owner, err)
	}
	return nil
}

func cmdCheck(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if conf.RawPrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs the ADD result as prevResult", "")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decoding prevResult", err.Error())
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "converting prevResult", err.Error())
	}
	pool, err := conf.pool()
	if err != nil {
		return err
	}
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	addrs, err := addressesFor(pool, owner, conf.ranges, prev)
	if err != nil {
		return err
	}
	podNS, err := openPodNetns(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	node, pod, err := handles(podNS)
	if err != nil {
		return err
	}
	defer node.Close()
	defer pod.Close()

	att := attachment{network: conf.Name, owner: owner, ranges: conf.ranges, addrs: addrs}
	host, err := verifyHost(node, att)
	if err != nil {
		return fmt.Errorf("checking %s: %w", owner, err)
	}
	if err := verifyPod(pod, host, att); err != nil {
		return fmt.Errorf("checking %s: %w", owner, err)
	}
	return nil
}

// addressesFor returns owner's addresses in range order, checking that IPAM
// and the ADD result agree on them.
func addressesFor(pool *ipam.Pool, owner ipam.Owner, ranges []netip.Prefix, prev *current.Result) ([]netip.Addr, error) {
	held, err := pool.Lookup(owner)
	if err != nil {
		return nil, err
	}
	inResult := make(map[netip.Addr]bool)
	for _, ipc := range prev.IPs {
		if addr, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			inResult[addr.Unmap()] = true
		}
	}
	addrs := make([]netip.Addr, 0, len(ranges))
	for _, r := range ranges {
		var found netip.Addr
		for _, a := range held {
			if r.Contains(a) {
				found = a
			}
		}
		if !found.IsValid() {
			return nil, fmt.Errorf("checking %s: IPAM holds no address in %s for it", owner, r)
		}
		if !inResult[found] {
			return nil, fmt.Errorf("checking %s: IPAM holds %s, which the ADD result does not list", owner, found)
		}
		addrs = append(addrs, found)
	}
	if len(inResult) != len(addrs) {
		return nil, fmt.Errorf("checking %s: the ADD result lists %d addresses, IPAM holds %v", owner, len(inResult), addrs)
	}
	return addrs, nil
}

func cmdGC(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	pool, err := conf.pool()
	if err != nil {
		return err
	}
	valid := make([]ipam.Owner, 0, len(conf.ValidAttachments))
	isValid := make(map[ipam.Owner]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		o := ipam.Owner{ContainerID: a.ContainerID, IfName: a.IfName}
		valid = append(valid, o)
		isValid[o] = true
	}
	if _, err := pool.ReleaseAllExcept(valid); err != nil {
		return err
	}
	node, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer node.Close()
	links, err := listLinks(node)
	if err != nil {
		return fmt.Errorf("listing node links: %w", err)
	}
	// An ADD allocates before it creates its veth, so every veth listed
	// above whose owner GC spared (an ADD in flight, a young allocation)
	// has an address now: those veths stay.
	remaining, err := pool.List()
	if err != nil {
		return err
	}
	holds := make(map[ipam.Owner]bool, len(remaining))
	for _, a := range remaining {
		holds[a.Owner] = true
	}
	var errs []error
	for _, link := range links {
		owner, ours := parseVethAlias(conf.Name, link.Attrs().Alias)
		if !ours || isValid[owner] || holds[owner] {
			continue
		}
		if err := deleteHostVeth(node, conf.Name, owner); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collecting stale veths: %w", err)
	}
	return nil
}

func cmdStatus(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		var cniErr *types.Error
		if errors.As(err, &cniErr) {
			return types.NewError(types.ErrPluginNotAvailable, "netpolcheck-cni not available: "+cniErr.Msg, cniErr.Details)
		}
		return types.NewError(types.ErrPluginNotAvailable, "netpolcheck-cni not available", err.Error())
	}
	pool, err := conf.pool()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "netpolcheck-cni not available", err.Error())
	}
	if err := checkWritable(pool.Dir()); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "netpolcheck-cni not available: IPAM data directory is not writable", err.Error())
	}
	return nil
}

func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, ".status-*")
	if err != nil {
		return err
	}
	return errors.Join(probe.Close(), os.Remove(probe.Name()))
}

// openPodNetns opens the pod's namespace, refusing the plugin's own.
func openPodNetns(path string) (netns.NsHandle, error) {
	podNS, err := netns.GetFromPath(path)
	if err != nil {
		return 0, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("opening pod network namespace %q: %v", path, err), "")
	}
	same, err := sameAsOwnNetns(path)
	if err != nil || same {
		podNS.Close()
		if err != nil {
			return 0, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("comparing pod network namespace %q with the plugin's: %v", path, err), "")
		}
		return 0, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("pod network namespace %q is the plugin's (node's) own namespace", path), "")
	}
	return podNS, nil
}

func sameAsOwnNetns(path string) (bool, error) {
	own, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return false, err
	}
	pod, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(own, pod), nil
}

// handles opens netlink in the node's (current) and the pod's namespace.
func handles(podNS netns.NsHandle) (node, pod *netlink.Handle, err error) {
	node, err = netlink.NewHandle()
	if err != nil {
		return nil, nil, fmt.Errorf("opening netlink in the node namespace: %w", err)
	}
	pod, err = netlink.NewHandleAt(podNS)
	if err != nil {
		node.Close()
		return nil, nil, fmt.Errorf("opening netlink in the pod namespace: %w", err)
	}
	return node, pod, nil
}

// enableForwarding turns on IPv4 (and, for an IPv6 range, IPv6) forwarding
// in the plugin's namespace, the node's. Each value is read first, so a node
// where forwarding is already on (a kind node) needs no writable /proc/sys.
func enableForwarding(ranges []netip.Prefix) error {
	for _, r := range ranges {
		path := "/proc/sys/net/ipv4/ip_forward"
		if r.Addr().Is6() {
			path = "/proc/sys/net/ipv6/conf/all/forwarding"
		}
		value, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if string(value) == "1\n" {
			continue
		}
		if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enabling forwarding: %w", err)
		}
	}
	return nil
}
