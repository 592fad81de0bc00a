package plugin_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin/cnitest"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin/nodeexec"
)

// pluginDir holds the netpolcheck-cni binary that TestMain builds; libcni
// finds it there as CNI_PATH, as a runtime finds /opt/cni/bin.
type harness struct{ pluginDir string }

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // the integration tests skip themselves
	}
	dir, err := os.MkdirTemp("", "netpolcheck-cni-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := cnitest.BuildBinary("github.com/netpolcheck/netpolcheck/cmd/netpolcheck-cni", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Setenv(pluginDirEnv, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// pluginDirEnv passes the built plugin's directory from TestMain to the
// tests without a package-level variable.
const pluginDirEnv = "NETPOLCHECK_TEST_CNI_PATH"

func newHarness(t testing.TB) harness {
	t.Helper()
	netnstest.RequireRoot(t)
	dir := os.Getenv(pluginDirEnv)
	if dir == "" {
		t.Fatal("plugin binary was not built")
	}
	return harness{pluginDir: dir}
}

// node is a simulated node: a network namespace in which libcni runs the
// plugin, with its own IPAM directory and libcni result cache.
type node struct {
	netns   *netnstest.Netns
	ranges  []netip.Prefix
	dataDir string
	list    *libcni.NetworkConfigList
	cni     *libcni.CNIConfig
}

func (h harness) newNode(t testing.TB, suffix string, ranges ...string) *node {
	t.Helper()
	n := &node{netns: netnstest.New(t, suffix), dataDir: t.TempDir()}
	for _, r := range ranges {
		n.ranges = append(n.ranges, netip.MustParsePrefix(r))
	}
	conflist, err := plugin.Conflist(n.ranges, n.dataDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	n.list = mustConflist(t, conflist)
	n.cni = h.runtime(t, n.netns)
	return n
}

// runtime returns a libcni runtime that runs the plugin in the node's
// namespace, with a result cache of its own.
func (h harness) runtime(t testing.TB, nodeNetns *netnstest.Netns) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{h.pluginDir}, t.TempDir(), nodeexec.New(nodeNetns.Path))
}

func mustConflist(t testing.TB, conflist []byte) *libcni.NetworkConfigList {
	t.Helper()
	list, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		t.Fatalf("parsing conflist: %v\n%s", err, conflist)
	}
	return list
}

// pod is a pod sandbox: a network namespace attached through CNI.
type pod struct {
	netns *netnstest.Netns
	rt    *libcni.RuntimeConf
	addrs []netip.Addr
}

func newPodNetns(t testing.TB, suffix string) (*netnstest.Netns, *libcni.RuntimeConf) {
	ns := netnstest.New(t, suffix)
	return ns, &libcni.RuntimeConf{ContainerID: "ctr-" + suffix, NetNS: ns.Path, IfName: "eth0"}
}

// addPod creates a pod namespace and ADDs it; the pod is DELeted when the
// test ends.
func (n *node) addPod(t testing.TB, suffix string) *pod {
	t.Helper()
	ns, rt := newPodNetns(t, suffix)
	p := &pod{netns: ns, rt: rt}
	result, err := n.cni.AddNetworkList(context.Background(), n.list, rt)
	if err != nil {
		t.Fatalf("ADD %s: %v", suffix, err)
	}
	t.Cleanup(func() {
		if err := n.cni.DelNetworkList(context.Background(), n.list, rt); err != nil {
			t.Errorf("DEL %s at cleanup: %v", suffix, err)
		}
	})
	res, err := current.NewResultFromResult(result)
	if err != nil {
		t.Fatalf("ADD %s result: %v", suffix, err)
	}
	for _, ipc := range res.IPs {
		addr, _ := netip.AddrFromSlice(ipc.Address.IP)
		p.addrs = append(p.addrs, addr.Unmap())
	}
	if len(p.addrs) != len(n.ranges) {
		t.Fatalf("ADD %s returned %v, want one address per range %v", suffix, p.addrs, n.ranges)
	}
	return p
}

func (n *node) pool(t testing.TB) *ipam.Pool {
	t.Helper()
	pool, err := ipam.New(n.dataDir, plugin.NetworkName, n.ranges)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func (n *node) allocations(t testing.TB) []ipam.Allocation {
	t.Helper()
	all, err := n.pool(t).List()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// podVeths lists the node-side pod veths in the node's namespace.
// backdateAllocations makes every allocation of the node a minute old.
func (n *node) backdateAllocations(t testing.TB) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	for _, a := range n.allocations(t) {
		if err := os.Chtimes(filepath.Join(n.pool(t).Dir(), a.Addr.String()), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func (n *node) podVeths(t testing.TB) []string {
	t.Helper()
	return linkNames(t, n.netns.Path, plugin.HostVethPrefix)
}

// linkNames lists the links of a namespace whose names start with prefix.
func linkNames(t testing.TB, netnsPath, prefix string) []string {
	t.Helper()
	nl, err := netns.Handle(netnsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

// connectNodes joins two nodes with a veth on 10.99.1.0/24 and
// fd00:99:1::/64 and routes each node's pod ranges via the other, as the
// route agent would.
func connectNodes(t testing.TB, a, b *node) {
	t.Helper()
	netnstest.Veth(a.netns, "uplink", b.netns, "uplink")
	for i, n := range []*node{a, b} {
		// Without DAD the link-local address is usable at once.
		n.netns.Sysctl("net.ipv6.conf.uplink.accept_dad", "0")
		n.netns.IP("addr", "add", fmt.Sprintf("10.99.1.%d/24", i+1), "dev", "uplink")
		n.netns.IP("addr", "add", fmt.Sprintf("fd00:99:1::%d/64", i+1), "dev", "uplink", "nodad")
		n.netns.IP("link", "set", "uplink", "up")
	}
	for _, n := range []*node{a, b} {
		cnitest.WaitLinkLocal(t, n.netns.Name, "uplink")
	}
	route := func(from, to *node, via int) {
		for _, r := range to.ranges {
			gw := fmt.Sprintf("10.99.1.%d", via)
			if r.Addr().Is6() {
				gw = fmt.Sprintf("fd00:99:1::%d", via)
			}
			from.netns.IP("route", "add", r.String(), "via", gw)
		}
	}
	route(a, b, 2)
	route(b, a, 1)
}
