package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin/cnitest"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin/nodeexec"
)

const probeTimeout = 3 * time.Second

// expectReach checks TCP from pod `from` to every address of pod `to`.
func expectReach(t *testing.T, from, to *pod) {
	t.Helper()
	for _, addr := range to.addrs {
		dst := netip.AddrPortFrom(addr, 8080)
		got, err := cnitest.DialTCP(from.netns.Path, dst, probeTimeout)
		if err != nil {
			t.Errorf("%s -> %s: %v", from.rt.ContainerID, dst, err)
		} else if got != to.rt.ContainerID {
			t.Errorf("%s -> %s: answered by %q, want %q", from.rt.ContainerID, dst, got, to.rt.ContainerID)
		}
	}
}

func serve(t *testing.T, p *pod) {
	t.Helper()
	for _, addr := range p.addrs {
		cnitest.ServeTCP(t, p.netns.Path, netip.AddrPortFrom(addr, 8080), p.rt.ContainerID)
	}
}

func cniCode(err error) (uint, string) {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return cniErr.Code, cniErr.Msg
	}
	return 0, ""
}

func TestPodsReachEachOtherOnOneNodeAndAcrossNodes(t *testing.T) {
	h := newHarness(t)
	n1 := h.newNode(t, "n1", "10.244.1.0/24", "fd00:10:244:1::/64")
	n2 := h.newNode(t, "n2", "10.244.2.0/24", "fd00:10:244:2::/64")
	connectNodes(t, n1, n2)

	a, b := n1.addPod(t, "a"), n1.addPod(t, "b")
	c := n2.addPod(t, "c")
	for _, p := range []*pod{a, b, c} {
		serve(t, p)
	}
	for _, gw := range []string{"10.244.1.1", "fd00:10:244:1::1"} {
		cnitest.ServeTCP(t, n1.netns.Path, netip.AddrPortFrom(netip.MustParseAddr(gw), 8080), "node1")
	}
	if a.addrs[0].String() != "10.244.1.2" || a.addrs[1].String() != "fd00:10:244:1::2" {
		t.Errorf("first pod got %v, want the first addresses after the gateways", a.addrs)
	}

	pairs := [][2]*pod{{a, b}, {b, a}, {a, c}, {c, a}, {b, c}, {c, b}, {a, a}}
	for _, pair := range pairs {
		expectReach(t, pair[0], pair[1])
	}

	for _, check := range []struct {
		n *node
		p *pod
	}{{n1, a}, {n1, b}, {n2, c}} {
		if err := check.n.cni.CheckNetworkList(context.Background(), check.n.list, check.p.rt); err != nil {
			t.Errorf("CHECK %s: %v", check.p.rt.ContainerID, err)
		}
	}

	// DEL a twice: both succeed, and b keeps its connectivity, although a's
	// veth, the first to get the node's gateway address, is gone.
	for i := range 2 {
		if err := n1.cni.DelNetworkList(context.Background(), n1.list, a.rt); err != nil {
			t.Fatalf("DEL #%d of a: %v", i+1, err)
		}
	}
	if len(n1.podVeths(t)) != 1 || len(n1.allocations(t)) != 2 {
		t.Errorf("after DEL of a node 1 has veths %v and allocations %v, want b's only", n1.podVeths(t), n1.allocations(t))
	}
	expectReach(t, b, c)
	expectReach(t, c, b)
	// With its neighbour cache flushed, b resolves the gateway again and
	// reaches the node at it.
	b.netns.IP("neigh", "flush", "all")
	for _, gw := range []string{"10.244.1.1", "fd00:10:244:1::1"} {
		dst := netip.AddrPortFrom(netip.MustParseAddr(gw), 8080)
		if got, err := cnitest.DialTCP(b.netns.Path, dst, probeTimeout); err != nil || got != "node1" {
			t.Errorf("b -> node 1 at %s after DEL of a: %q, %v", dst, got, err)
		}
	}
	if err := n1.cni.CheckNetworkList(context.Background(), n1.list, b.rt); err != nil {
		t.Errorf("CHECK b after DEL of a: %v", err)
	}
}

func TestCheckDetectsBrokenAttachment(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "chk", "10.244.1.0/24")
	p := n.addPod(t, "p")
	p.netns.IP("route", "del", "default")
	err := n.cni.CheckNetworkList(context.Background(), n.list, p.rt)
	if err == nil || !strings.Contains(err.Error(), "no default route") {
		t.Errorf("CHECK after removing the pod's default route: %v, want a missing-route error", err)
	}
}

func TestDelWithoutNetnsSucceeds(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "delns", "10.244.1.0/24")
	p := n.addPod(t, "p")
	netnstest.IP(t, "netns", "delete", p.netns.Name)
	rt := *p.rt
	rt.NetNS = ""
	if err := n.cni.DelNetworkList(context.Background(), n.list, &rt); err != nil {
		t.Fatalf("DEL without a netns: %v", err)
	}
	if got := n.allocations(t); len(got) != 0 {
		t.Errorf("DEL left allocations %v", got)
	}
}

func TestGCRemovesLeakedAttachment(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "gc", "10.244.1.0/24", "fd00:10:244:1::/64")
	kept := n.addPod(t, "kept")

	// The leaked pod is added by a runtime whose cache is then lost, so only
	// the plugin's own GC can find it.
	leakedNetns, leakedRT := newPodNetns(t, "leaked")
	if _, err := h.runtime(t, n.netns).AddNetworkList(context.Background(), n.list, leakedRT); err != nil {
		t.Fatalf("ADD leaked: %v", err)
	}
	if got := len(n.podVeths(t)); got != 2 {
		t.Fatalf("before GC the node has %d pod veths, want 2", got)
	}
	n.backdateAllocations(t) // GC spares allocations younger than its call

	valid := []types.GCAttachment{{ContainerID: kept.rt.ContainerID, IfName: kept.rt.IfName}}
	if err := n.cni.GCNetworkList(context.Background(), n.list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}

	if got := n.podVeths(t); len(got) != 1 || got[0] != plugin.HostVethName(kept.rt.ContainerID, "eth0") {
		t.Errorf("after GC the node's pod veths are %v, want only kept's", got)
	}
	if got := linkNames(t, leakedNetns.Path, "eth"); len(got) != 0 {
		t.Errorf("after GC the leaked pod still has %v", got)
	}
	for _, a := range n.allocations(t) {
		if a.Owner.ContainerID != kept.rt.ContainerID {
			t.Errorf("after GC %s is still allocated to %s", a.Addr, a.Owner)
		}
	}
	if err := n.cni.CheckNetworkList(context.Background(), n.list, kept.rt); err != nil {
		t.Errorf("CHECK of the kept pod after GC: %v", err)
	}
}

// TestGCDuringAdds runs GCs without pause while pods are added in parallel;
// each GC gets the attachments whose ADD had returned before it started, as
// a runtime's list is. No pod may lose its address or veth: afterwards every
// pod passes CHECK and the pool holds one address per pod.
//
// The GCs run through a libcni runtime with a result cache of its own. libcni
// first DELs every attachment in its cache that the valid list lacks, and an
// ADD that returned (and was cached) after the list was taken would be one: a
// runtime avoids that by listing its sandboxes, in-flight ones included. With
// one cache the test raced with itself (a CHECK finding its cached result
// deleted); with two, what it tests is the plugin's own GC sparing ADDs in
// flight.
func TestGCDuringAdds(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "gcadd", "10.244.1.0/24")
	gc := h.runtime(t, n.netns)
	const pods = 30
	rts := make([]*libcni.RuntimeConf, pods)
	for i := range pods {
		_, rts[i] = newPodNetns(t, fmt.Sprintf("g%d", i))
	}
	var mu sync.Mutex
	var added []types.GCAttachment
	stop := make(chan struct{})
	var gcs sync.WaitGroup
	gcRuns := 0
	gcs.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			valid := slices.Clone(added)
			mu.Unlock()
			if err := gc.GCNetworkList(context.Background(), n.list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
				t.Errorf("GC: %v", err)
				return
			}
			gcRuns++
		}
	})
	runAll(t, pods, func(i int) error {
		if _, err := n.cni.AddNetworkList(context.Background(), n.list, rts[i]); err != nil {
			return fmt.Errorf("ADD %d: %w", i, err)
		}
		mu.Lock()
		added = append(added, types.GCAttachment{ContainerID: rts[i].ContainerID, IfName: rts[i].IfName})
		mu.Unlock()
		return nil
	})
	close(stop)
	gcs.Wait()
	t.Logf("%d GCs ran during %d parallel ADDs", gcRuns, pods)
	if got := len(n.allocations(t)); got != pods {
		t.Errorf("the pool holds %d addresses for %d pods", got, pods)
	}
	runAll(t, pods, func(i int) error {
		if err := n.cni.CheckNetworkList(context.Background(), n.list, rts[i]); err != nil {
			return fmt.Errorf("CHECK %d after the GCs: %w", i, err)
		}
		return nil
	})
}

func TestConcurrentAddsGetDistinctAddresses(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "par", "10.244.1.0/24")
	const pods = 100
	rts := make([]*libcni.RuntimeConf, pods)
	for i := range pods {
		_, rts[i] = newPodNetns(t, fmt.Sprintf("p%d", i))
	}

	addrs := make([]string, pods)
	start := time.Now()
	runAll(t, pods, func(i int) error {
		result, err := n.cni.AddNetworkList(context.Background(), n.list, rts[i])
		if err != nil {
			return fmt.Errorf("ADD %d: %w", i, err)
		}
		addrs[i] = resultAddrs(t, result)
		return nil
	})
	t.Logf("%d parallel ADDs took %v", pods, time.Since(start))
	if t.Failed() {
		return
	}
	slices.Sort(addrs)
	if got := len(slices.Compact(slices.Clone(addrs))); got != pods {
		t.Errorf("%d parallel ADDs got %d distinct addresses: %v", pods, got, addrs)
	}
	if got := len(n.podVeths(t)); got != pods {
		t.Errorf("node has %d pod veths after %d ADDs", got, pods)
	}

	start = time.Now()
	runAll(t, pods, func(i int) error {
		if err := n.cni.DelNetworkList(context.Background(), n.list, rts[i]); err != nil {
			return fmt.Errorf("DEL %d: %w", i, err)
		}
		return nil
	})
	t.Logf("%d parallel DELs took %v", pods, time.Since(start))
	if got := n.allocations(t); len(got) != 0 {
		t.Errorf("after %d DELs the pool still holds %d addresses", pods, len(got))
	}
	if got := n.podVeths(t); len(got) != 0 {
		t.Errorf("after %d DELs the node still has veths %v", pods, got)
	}
}

// runAll runs fn(0..n-1) in parallel and reports every error.
func runAll(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

func resultAddrs(t *testing.T, result types.Result) string {
	t.Helper()
	res, err := current.NewResultFromResult(result)
	if err != nil {
		t.Error(err)
		return ""
	}
	var out []string
	for _, ipc := range res.IPs {
		out = append(out, ipc.Address.IP.String())
	}
	return strings.Join(out, ",")
}

func TestBadInputLeavesNothingBehind(t *testing.T) {
	h := newHarness(t)

	t.Run("malformed conflist", func(t *testing.T) {
		if _, err := libcni.ConfListFromBytes([]byte(`{"cniVersion": "1.1.0", "name": "netpolcheck", "plugins": [`)); err == nil {
			t.Error("libcni accepted truncated JSON")
		}
		n := h.newNode(t, "badconf", "10.244.1.0/24")

		// What a runtime would pass if it skipped its own parsing.
		ns, rt := newPodNetns(t, "bcraw")
		args := &invoke.Args{Command: "ADD", ContainerID: rt.ContainerID, NetNS: ns.Path, IfName: "eth0", Path: h.pluginDir}
		truncated := []byte(`{"cniVersion": "1.1.0", "name": "netpolcheck", "type": "netpolcheck-cni", "ranges": [`)
		_, err := invoke.ExecPluginWithResult(context.Background(), h.pluginDir+"/"+plugin.PluginType, truncated, args, nodeexec.New(n.netns.Path))
		if code, msg := cniCode(err); code != types.ErrDecodingFailure || !strings.Contains(msg, "unexpected end of JSON") {
			t.Errorf("ADD with truncated JSON: %v, want code %d explaining the JSON error", err, types.ErrDecodingFailure)
		}
		expectNothingLeft(t, n)

		cases := []struct {
			name, entry string
			code        uint
			msg         string
		}{
			{"range not a list", `"ranges": "10.244.1.0/24"`, types.ErrDecodingFailure, "decoding netpolcheck-cni configuration"},
			{"no ranges", `"ranges": []`, types.ErrInvalidNetworkConfig, `"ranges" is empty`},
			{"bad prefix", `"ranges": ["10.244.1.0/33"]`, types.ErrInvalidNetworkConfig, "ranges[0]"},
			{"host bits", `"ranges": ["10.244.1.7/24"]`, types.ErrInvalidNetworkConfig, "host bits set"},
			{"two IPv4 ranges", `"ranges": ["10.244.1.0/24", "10.244.3.0/24"]`, types.ErrInvalidNetworkConfig, "at most one IPv4"},
			{"bad mtu", `"ranges": ["10.244.1.0/24"], "mtu": 20`, types.ErrInvalidNetworkConfig, `"mtu"`},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				conflist := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "netpolcheck",
					"plugins": [{"type": "netpolcheck-cni", "dataDir": %q, %s}]}`, n.dataDir, tc.entry)
				_, rt := newPodNetns(t, fmt.Sprintf("bc%d", i))
				_, err := n.cni.AddNetworkList(context.Background(), mustConflist(t, []byte(conflist)), rt)
				code, msg := cniCode(err)
				if code != tc.code || !strings.Contains(msg, tc.msg) {
					t.Errorf("ADD: %v (code %d), want code %d mentioning %q", err, code, tc.code, tc.msg)
				}
				expectNothingLeft(t, n)
			})
		}
	})

	t.Run("exhausted pool", func(t *testing.T) {
		n := h.newNode(t, "full", "10.244.1.0/30", "fd00:10:244:1::/64")
		first := n.addPod(t, "first")
		ns, rt := newPodNetns(t, "second")
		_, err := n.cni.AddNetworkList(context.Background(), n.list, rt)
		code, msg := cniCode(err)
		if code != plugin.ErrAddressPoolExhausted || !strings.Contains(msg, "no free address in range 10.244.1.0/30") {
			t.Errorf("ADD on a full pool: %v (code %d), want code %d naming the range", err, code, plugin.ErrAddressPoolExhausted)
		}
		if got := n.podVeths(t); len(got) != 1 {
			t.Errorf("node veths %v, want only the first pod's", got)
		}
		if got := n.allocations(t); len(got) != 2 || got[0].Owner.ContainerID != first.rt.ContainerID {
			t.Errorf("allocations %v, want only the first pod's two", got)
		}
		if got := linkNames(t, ns.Path, "eth"); len(got) != 0 {
			t.Errorf("the refused pod has links %v", got)
		}
	})

	t.Run("missing netns", func(t *testing.T) {
		n := h.newNode(t, "nons", "10.244.1.0/24")
		rt := &libcni.RuntimeConf{ContainerID: "ctr-missing", NetNS: "/run/netns/npc-does-not-exist", IfName: "eth0"}
		_, err := n.cni.AddNetworkList(context.Background(), n.list, rt)
		code, msg := cniCode(err)
		if code != types.ErrInvalidNetNS || !strings.Contains(msg, "/run/netns/npc-does-not-exist") {
			t.Errorf("ADD into a missing netns: %v (code %d), want code %d naming the path", err, code, types.ErrInvalidNetNS)
		}
		expectNothingLeft(t, n)
	})

	t.Run("node netns as pod netns", func(t *testing.T) {
		n := h.newNode(t, "self", "10.244.1.0/24")
		rt := &libcni.RuntimeConf{ContainerID: "ctr-self", NetNS: n.netns.Path, IfName: "eth0"}
		_, err := n.cni.AddNetworkList(context.Background(), n.list, rt)
		if code, _ := cniCode(err); code != types.ErrInvalidNetNS {
			t.Errorf("ADD into the node's own netns: %v, want code %d", err, types.ErrInvalidNetNS)
		}
		expectNothingLeft(t, n)
	})
}

func expectNothingLeft(t *testing.T, n *node) {
	t.Helper()
	if got := n.podVeths(t); len(got) != 0 {
		t.Errorf("node veths left: %v", got)
	}
	all, err := n.pool(t).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("allocations left: %v", all)
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "status", "10.244.1.0/24")
	if err := n.cni.GetStatusNetworkList(context.Background(), n.list); err != nil {
		t.Errorf("STATUS of a healthy node: %v", err)
	}

	// A data directory below a regular file cannot be created, even by root.
	blocker := t.TempDir() + "/file"
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	conflist, err := plugin.Conflist(n.ranges, blocker+"/state", 0)
	if err != nil {
		t.Fatal(err)
	}
	err = n.cni.GetStatusNetworkList(context.Background(), mustConflist(t, conflist))
	if code, msg := cniCode(err); code != types.ErrPluginNotAvailable || !strings.Contains(msg, "not writable") {
		t.Errorf("STATUS with an unwritable data dir: %v, want code %d", err, types.ErrPluginNotAvailable)
	}

	noRange := `{"cniVersion": "1.1.0", "name": "netpolcheck", "plugins": [{"type": "netpolcheck-cni", "ranges": []}]}`
	err = n.cni.GetStatusNetworkList(context.Background(), mustConflist(t, []byte(noRange)))
	if code, msg := cniCode(err); code != types.ErrPluginNotAvailable || !strings.Contains(msg, "ranges") {
		t.Errorf("STATUS without a range: %v, want code %d", err, types.ErrPluginNotAvailable)
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t)
	n := h.newNode(t, "ver", "10.244.1.0/24")
	info, err := n.cni.GetVersionInfo(context.Background(), plugin.PluginType)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.SupportedVersions(), "1.1.0") {
		t.Errorf("supported versions %v lack 1.1.0", info.SupportedVersions())
	}
}
