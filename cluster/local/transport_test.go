package local_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestProbeTransportNetns checks where the local transport runs each kind of
// source: a pod in its own network namespace, named in its node's filesystem
// view (reached through the node agent's root), a host-network pod in its
// node's, an external host in its own.
func TestProbeTransportNetns(t *testing.T) {
	// A stand-in for node1's agent: what matters is its root.
	agent, err := detached.Start(detached.Spec{Name: "node1/node-agent", Path: "/bin/sleep", Args: []string{"300"}, LogFile: filepath.Join(t.TempDir(), "agent.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Stop(context.Background(), time.Second) })
	c := &local.Cluster{
		Nodes:     []topology.Node{{Name: "node1", Netns: "npc-node1"}, {Name: "node2", Netns: "npc-node2"}},
		Externals: []local.ExternalHost{{External: topology.External{Name: "ext-192-0-2-10", Netns: "npc-ext1"}}},
		Processes: []detached.Process{agent},
	}
	tr := c.ProbeTransport(map[string]string{"x/a": "0123456789abcdef", "x/b": "fedcba9876543210"})
	cases := []struct {
		source matrix.Endpoint
		want   string
	}{
		{matrix.Endpoint{Name: "x/a", Namespace: "x", Pod: "a", Node: "node1"}, fmt.Sprintf("/proc/%d/root/run/netns/%s", agent.PID, c.PodNetns("0123456789abcdef"))},
		{matrix.Endpoint{Name: "nodes/host-node2", Namespace: "nodes", Pod: "host-node2", Node: "node2", HostNetwork: true}, netns.Path("npc-node2")},
		{matrix.Endpoint{Name: "ext-192-0-2-10", External: true}, netns.Path("npc-ext1")},
	}
	for _, tc := range cases {
		got, err := tr.NetnsPath(tc.source)
		if err != nil || got != tc.want {
			t.Errorf("%s: netns %q, %v; want %q", tc.source.Name, got, err, tc.want)
		}
	}
	if _, err := tr.NetnsPath(matrix.Endpoint{Name: "nodes/host-node3", Node: "node3", HostNetwork: true}); err == nil {
		t.Error("a host-network pod on an unknown node: no error")
	}
	if _, err := tr.NetnsPath(matrix.Endpoint{Name: "x/b", Namespace: "x", Pod: "b", Node: "node2"}); err == nil {
		t.Error("a pod on a node whose agent does not run: no error")
	}
}
