package local_test

import (
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestProbeTransportNetns checks where the local transport runs each kind of
// source: a pod in its own network namespace, a host-network pod in its
// node's, an external host in its own.
func TestProbeTransportNetns(t *testing.T) {
	c := &local.Cluster{
		Nodes:     []topology.Node{{Name: "node1", Netns: "npc-node1"}, {Name: "node2", Netns: "npc-node2"}},
		Externals: []local.ExternalHost{{External: topology.External{Name: "ext-192-0-2-10", Netns: "npc-ext1"}}},
	}
	tr := c.ProbeTransport(map[string]string{"x/a": "0123456789abcdef"})
	cases := []struct {
		source matrix.Endpoint
		want   string
	}{
		{matrix.Endpoint{Name: "x/a", Namespace: "x", Pod: "a", Node: "node1"}, netns.Path(c.PodNetns("0123456789abcdef"))},
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
}
