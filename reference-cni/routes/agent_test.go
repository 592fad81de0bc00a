package routes_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin/cnitest"
	"github.com/netpolcheck/netpolcheck/reference-cni/routes"
)

func node(name string, podCIDRs []string, internalIPs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: podCIDRs}}
	for _, ip := range internalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

// twoNodes creates nodes n1 and n2 joined by a veth on 10.99.2.0/24 and
// fd00:99:2::/64 (n1 is .1, n2 is .2), with n2's pod gateway addresses
// 10.244.2.1 and fd00:10:244:2::1 on its loopback. It returns a netlink
// handle in n1 and n2's namespace.
func twoNodes(t *testing.T) (*netlink.Handle, *netnstest.Netns, *netnstest.Netns) {
	t.Helper()
	n1, n2 := netnstest.New(t, "rt-n1"), netnstest.New(t, "rt-n2")
	netnstest.Veth(n1, "uplink", n2, "uplink")
	for i, n := range []*netnstest.Netns{n1, n2} {
		n.Sysctl("net.ipv6.conf.uplink.accept_dad", "0")
		n.IP("addr", "add", fmt.Sprintf("10.99.2.%d/24", i+1), "dev", "uplink")
		n.IP("addr", "add", fmt.Sprintf("fd00:99:2::%d/64", i+1), "dev", "uplink", "nodad")
		n.IP("link", "set", "uplink", "up")
	}
	for _, n := range []*netnstest.Netns{n1, n2} {
		cnitest.WaitLinkLocal(t, n.Name, "uplink")
	}
	n2.IP("addr", "add", "10.244.2.1/32", "dev", "lo")
	n2.IP("addr", "add", "fd00:10:244:2::1/128", "dev", "lo")

	return n1.Handle(), n1, n2
}

// routeTable lists the routes of nl's namespace with protocol proto as
// sorted "dst via gw" strings.
func routeTable(t *testing.T, nl *netlink.Handle, proto netlink.RouteProtocol) []string {
	t.Helper()
	list, err := nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatalf("listing routes: %v", err)
	}
	var out []string
	for _, r := range list {
		out = append(out, r.Dst.String()+" via "+r.Gw.String())
	}
	slices.Sort(out)
	return out
}

// eventually polls the agent's routes until they equal want.
func eventually(t *testing.T, nl *netlink.Handle, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := routeTable(t, nl, routes.RouteProtocol)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent routes = %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startAgent(t *testing.T, agent *routes.Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestAgentFollowsNodes(t *testing.T) {
	netnstest.RequireRoot(t)
	nl, n1, n2 := twoNodes(t)
	// A route the agent does not own must survive everything.
	n1.IP("route", "add", "10.244.9.0/24", "via", "10.99.2.9", "proto", "static")

	client := fake.NewClientset(
		node("n1", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "10.99.2.1", "fd00:99:2::1"),
		node("n2", []string{"10.244.2.0/24", "fd00:10:244:2::/64"}, "10.99.2.2", "fd00:99:2::2"),
		node("n3", []string{"10.244.3.0/24"}, "10.99.2.3"),
	)
	conflistDir := t.TempDir()
	agent, err := routes.New(client, nl, routes.Config{
		NodeName: "n1", ConflistDir: conflistDir, DataDir: "/var/lib/test-ipam",
		ResyncPeriod: 200 * time.Millisecond, Logger: quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, agent)

	eventually(t, nl,
		"10.244.2.0/24 via 10.99.2.2", "fd00:10:244:2::/64 via fd00:99:2::2", "10.244.3.0/24 via 10.99.2.3")

	// The routes carry traffic: n1 reaches n2's pod gateway addresses.
	for _, dst := range []string{"10.244.2.1", "fd00:10:244:2::1"} {
		addr := netip.AddrPortFrom(netip.MustParseAddr(dst), 8080)
		cnitest.ServeTCP(t, n2.Path, addr, "n2")
		if got, err := cnitest.DialTCP(n1.Path, addr, 3*time.Second); err != nil || got != "n2" {
			t.Errorf("n1 -> %s: %q, %v", addr, got, err)
		}
	}

	conflist, err := os.ReadFile(filepath.Join(conflistDir, plugin.ConflistFileName))
	if err != nil {
		t.Fatalf("conflist not written: %v", err)
	}
	for _, want := range []string{`"10.244.1.0/24"`, `"fd00:10:244:1::/64"`, `"/var/lib/test-ipam"`, `"netpolcheck-cni"`} {
		if !strings.Contains(string(conflist), want) {
			t.Errorf("conflist lacks %s:\n%s", want, conflist)
		}
	}

	ctx := context.Background()
	n3, err := client.CoreV1().Nodes().Get(ctx, "n3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n3.Status.Addresses[0].Address = "10.99.2.4"
	if _, err := client.CoreV1().Nodes().Update(ctx, n3, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, nl,
		"10.244.2.0/24 via 10.99.2.2", "fd00:10:244:2::/64 via fd00:99:2::2", "10.244.3.0/24 via 10.99.2.4")

	if err := client.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, nl, "10.244.3.0/24 via 10.99.2.4")

	// A route deleted behind the agent's back comes back at the next resync.
	n1.IP("route", "del", "10.244.3.0/24")
	eventually(t, nl, "10.244.3.0/24 via 10.99.2.4")

	if got := routeTable(t, nl, netlink.RouteProtocol(4)); !slices.Equal(got, []string{"10.244.9.0/24 via 10.99.2.9"}) {
		t.Errorf("static routes = %v, want the foreign route untouched", got)
	}
}

func TestSyncReportsConflictsAndLeavesForeignRoutes(t *testing.T) {
	netnstest.RequireRoot(t)
	nl, n1, _ := twoNodes(t)
	n1.IP("route", "add", "10.244.9.0/24", "via", "10.99.2.9", "proto", "static")

	agent, err := routes.New(fake.NewClientset(), nl, routes.Config{NodeName: "n1", Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*corev1.Node{
		node("n1", []string{"10.244.1.0/24"}, "10.99.2.1"),
		node("n9", []string{"10.244.9.0/24"}, "10.99.2.99"),
		node("n2", []string{"10.244.2.0/24"}, "10.99.2.2"),
		node("far", []string{"10.244.4.0/24"}, "192.0.2.4"), // not on any link of n1
	}
	err = agent.Sync(nodes)
	if err == nil || !strings.Contains(err.Error(), "does not own") || !strings.Contains(err.Error(), "10.244.4.0/24") {
		t.Errorf("Sync: %v, want errors for the foreign route in the way and the unreachable node", err)
	}
	if got := routeTable(t, nl, routes.RouteProtocol); !slices.Equal(got, []string{"10.244.2.0/24 via 10.99.2.2"}) {
		t.Errorf("agent routes = %v, want the reachable, unconflicted node's route", got)
	}
	if got := routeTable(t, nl, netlink.RouteProtocol(4)); !slices.Equal(got, []string{"10.244.9.0/24 via 10.99.2.9"}) {
		t.Errorf("static routes = %v, want the foreign route untouched", got)
	}
}

func TestNewRequiresNodeName(t *testing.T) {
	if _, err := routes.New(fake.NewClientset(), nil, routes.Config{}); err == nil {
		t.Error("New accepted an empty node name")
	}
}
