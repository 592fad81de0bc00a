package local_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestNodeTraffic pins down what the reference enforcer does with traffic
// between pods and nodes (and host-network pods), which the API leaves to
// implementations and the README states: with every pod isolated for
// ingress and egress, a pod still reaches its own node and its own node
// reaches it (the forward hook never sees that traffic), while traffic
// between a pod and another node is judged like traffic with an address
// outside the cluster, and denied.
func TestNodeTraffic(t *testing.T) {
	name := fmt.Sprintf("n%d", os.Getpid())
	c, client := startCluster(t, name, 2)
	ctx := context.Background()
	// the host-network pods in a namespace of their own, which no policy selects
	ns, hostNS := "nt-x", "nt-host"
	for _, name := range []string{ns, hostNS} {
		noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}))
	}
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "a", "node1"), metav1.CreateOptions{}))
	for _, node := range []string{"node1", "node2"} {
		host := probePod(hostNS, "host-"+node, node)
		host.Spec.HostNetwork = true
		host.Spec.Containers[0].Command = []string{"/netpolcheck-probe", "serve", "--identity", "$(POD_NAMESPACE)/$(POD_NAME)", "--port", "8081/TCP"}
		host.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "serve-8081-tcp", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}}
		noErr(t)(client.CoreV1().Pods(hostNS).Create(ctx, host, metav1.CreateOptions{}))
	}
	a := waitRunning(t, client, ns, 1)["a"]
	pods := waitRunning(t, client, hostNS, 2)
	aNetns := podNetns(t, c, a)
	node1, node2 := c.Nodes[0], c.Nodes[1]
	if pods["host-node1"].Status.PodIP != node1.IP.String() || pods["host-node2"].Status.PodIP != node2.IP.String() {
		t.Fatalf("host-network pods have IPs %s and %s, want the nodes' %s and %s",
			pods["host-node1"].Status.PodIP, pods["host-node2"].Status.PodIP, node1.IP, node2.IP)
	}

	// Everything connects before any policy.
	cells := []struct {
		what             string
		from, to, expect string
		port             string
		isolated         matrix.Outcome
	}{
		{"pod -> its own node", aNetns, node1.IP.String(), hostNS + "/host-node1", "8081", matrix.Connected},
		{"pod -> another node", aNetns, node2.IP.String(), hostNS + "/host-node2", "8081", matrix.Timeout},
		{"its own node -> pod", netns.Path(node1.Netns), a.Status.PodIP, ns + "/a", "80", matrix.Connected},
		{"another node -> pod", netns.Path(node2.Netns), a.Status.PodIP, ns + "/a", "80", matrix.Timeout},
	}
	for _, cell := range cells {
		if res := probePort(t, c, cell.from, cell.to, cell.port, cell.expect, time.Second); res.Outcome != matrix.Connected {
			t.Errorf("%s, no policy: %s (%s), want connected", cell.what, res.Outcome, res.Detail)
		}
	}

	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{
			networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
	}
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, deny, metav1.CreateOptions{}))
	waitFor(t, 10*time.Second, "the deny policy enforced", func() bool {
		return probe(t, c, netns.Path(node2.Netns), a.Status.PodIP, ns+"/a", 200*time.Millisecond).Outcome != matrix.Connected
	})
	for _, cell := range cells {
		if res := probePort(t, c, cell.from, cell.to, cell.port, cell.expect, time.Second); res.Outcome != cell.isolated {
			t.Errorf("%s, every pod isolated: %s (%s), want %s", cell.what, res.Outcome, res.Detail, cell.isolated)
		}
	}
}
