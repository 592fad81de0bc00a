package topology_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

func TestTopologyConnectsNodesAndExternalsAndCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	prefix := fmt.Sprintf("npc-t%d-topo-", os.Getpid())
	t.Cleanup(func() { _ = topology.Delete(prefix) })
	n, err := topology.Create(prefix, 2)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := n.AddExternal("internet", []netip.Addr{netip.MustParseAddr("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddExternal("bad", []netip.Addr{netip.MustParseAddr("10.244.1.5")}); err == nil || !strings.Contains(err.Error(), "inside the cluster range") {
		t.Errorf("an external inside the pod range: %v", err)
	}
	// A TCP listener on node2 and on the external host, dialled from node1.
	listen(t, n.Nodes[1].Netns, "10.250.0.12:7000")
	listen(t, ext.Netns, "192.0.2.10:7000")
	dial(t, n.Nodes[0].Netns, "10.250.0.12:7000")
	dial(t, n.Nodes[0].Netns, "192.0.2.10:7000")

	if err := topology.Delete(prefix); err != nil {
		t.Fatal(err)
	}
	if left, _ := netns.List(prefix); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func listen(t *testing.T, ns, address string) {
	t.Helper()
	var l net.Listener
	if err := netns.Do(ns, func() (err error) { l, err = net.Listen("tcp", address); return err }); err != nil {
		t.Fatalf("listening on %s in %s: %v", address, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func dial(t *testing.T, ns, address string) {
	t.Helper()
	err := netns.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", address, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("dialing %s from %s: %v", address, ns, err)
	}
}
