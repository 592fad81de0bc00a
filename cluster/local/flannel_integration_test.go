package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// flannelOptions builds Flannel and the CNI plugins from their tools
// modules.
func flannelOptions(cni string) func(*local.Options) {
	return func(o *local.Options) {
		o.CNI = cni
		o.Flannel = controlplane.BuildOptions{SourceDir: "flannelbin"}
		o.CNIPlugins = controlplane.BuildOptions{SourceDir: "cnipluginsbin"}
		o.KubeRouter = controlplane.BuildOptions{SourceDir: "kuberouterbin"}
	}
}

// hostLinks are the names of this machine's own network links.
func hostLinks(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, out)
	}
	return string(out)
}

// checkFlannelRuns checks that Flannel's DaemonSet is Running and Ready on
// every node, with its vxlan link and subnet file, and that the reference
// CNI's plugin configuration, route agent and enforcer are absent.
func checkFlannelRuns(t *testing.T, c *local.Cluster, client kubernetes.Interface) {
	t.Helper()
	expectReadyOnEveryNode(t, c, client, "kube-flannel", "app=flannel", "Flannel")
	for _, p := range c.Processes {
		if strings.HasSuffix(p.Name, "/routes") || strings.HasSuffix(p.Name, "/enforcer") {
			t.Errorf("a reference CNI process runs (%s) beside Flannel", p.Name)
		}
	}
	for _, n := range c.Nodes {
		if links := inNode(t, n.Netns, "ip", "-d", "link", "show", "flannel.1"); !strings.Contains(links, "vxlan id 1") {
			t.Errorf("%s has no vxlan link flannel.1:\n%s", n.Name, links)
		}
		env, err := os.ReadFile(c.NodeFile(n.Name, "/run/flannel/subnet.env"))
		if err != nil || !strings.Contains(string(env), "FLANNEL_SUBNET="+strings.TrimSuffix(n.PodCIDR.String(), "0/24")+"1/24") {
			t.Errorf("%s subnet.env: %q, %v; want the node's pod range %s", n.Name, env, err, n.PodCIDR)
		}
		if _, err := os.Stat(c.NodeFile(n.Name, local.NodeConflist)); err == nil {
			t.Errorf("%s has the reference CNI's conflist beside Flannel's", n.Name)
		}
	}
}

// threePods starts probe pods a and c on the first node and b on the
// second, and returns them by name.
func threePods(t *testing.T, c *local.Cluster, client kubernetes.Interface, ns string) map[string]corev1.Pod {
	t.Helper()
	ctx := context.Background()
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	for name, node := range map[string]string{"a": c.Nodes[0].Name, "b": c.Nodes[1].Name, "c": c.Nodes[0].Name} {
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, name, node), metav1.CreateOptions{}))
	}
	return waitRunning(t, client, ns, 3)
}

// downLeavesNothing takes the cluster down and checks that nothing of it
// is left: namespaces (with their vxlan and bridge links and iptables),
// processes, the state dir, and no change to this machine's own links,
// iptables and ipsets.
func downLeavesNothing(t *testing.T, c *local.Cluster, name, linksBefore, firewallBefore string, processes ...string) {
	t.Helper()
	if err := local.Down(context.Background(), name, c.StateDir); err != nil {
		t.Fatal(err)
	}
	if left, _ := netns.List("npc-" + name + "-"); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range processes {
		if out, _ := exec.Command("pgrep", "-a", "-x", p).Output(); len(out) > 0 {
			t.Errorf("%s still runs: %s", p, out)
		}
	}
	if _, err := os.Stat(c.StateDir); !os.IsNotExist(err) {
		t.Errorf("state dir left behind: %v", err)
	}
	if after := hostLinks(t); after != linksBefore {
		t.Errorf("this machine's links changed:\nbefore:\n%s\nafter:\n%s", linksBefore, after)
	}
	if after := hostFirewall(t); after != firewallBefore {
		t.Errorf("this machine's iptables or ipsets changed:\nbefore:\n%s\nafter:\n%s", firewallBefore, after)
	}
}

// TestFlannel brings the local cluster up with Flannel from its own
// manifest: flanneld runs, ready, on both nodes with its vxlan link; pods
// reach each other across nodes (vxlan) and on one node (the bridge), also
// under a deny-all policy, which nothing enforces; down leaves nothing.
func TestFlannel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	linksBefore, firewallBefore := hostLinks(t), hostFirewall(t)
	name := fmt.Sprintf("fl%d", os.Getpid())
	c, client := startCluster(t, name, 2, flannelOptions(local.CNIFlannel))
	checkFlannelRuns(t, c, client)

	const ns = "fl-x"
	pods := threePods(t, c, client, ns)
	a, b, cPod := pods["a"], pods["b"], pods["c"]
	for _, pair := range [][2]corev1.Pod{{a, b}, {b, a}, {a, cPod}, {cPod, a}} {
		expectProbe(t, c, podNetns(t, c, pair[0]), pair[1].Status.PodIP, ns+"/"+pair[1].Name, matrix.Connected)
	}
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), policy, metav1.CreateOptions{}))
	time.Sleep(2 * time.Second)
	expectProbe(t, c, podNetns(t, c, a), b.Status.PodIP, ns+"/b", matrix.Connected)
	expectProbe(t, c, podNetns(t, c, a), cPod.Status.PodIP, ns+"/c", matrix.Connected)

	downLeavesNothing(t, c, name, linksBefore, firewallBefore, "flanneld")
}

// TestFlannelKubeRouter brings the local cluster up with Flannel's network
// and kube-router's policy controller (as k3s pairs them): bridged traffic
// passes iptables in every node, a deny-all policy blocks a probe across
// nodes and one on the same node's bridge, removing it lets both through
// again, and down leaves nothing.
func TestFlannelKubeRouter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	linksBefore, firewallBefore := hostLinks(t), hostFirewall(t)
	name := fmt.Sprintf("fk%d", os.Getpid())
	c, client := startCluster(t, name, 2, flannelOptions(local.CNIFlannelKubeRouter))
	checkFlannelRuns(t, c, client)
	for _, n := range c.Nodes {
		if v := strings.TrimSpace(inNode(t, n.Netns, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables")); v != "1" {
			t.Errorf("%s: bridge-nf-call-iptables = %s, want 1", n.Name, v)
		}
		if rules := inNode(t, n.Netns, "iptables-save"); !strings.Contains(rules, ":KUBE-ROUTER-FORWARD") {
			t.Errorf("%s has no KUBE-ROUTER-FORWARD chain:\n%s", n.Name, rules)
		}
		if confs, _ := filepath.Glob(c.NodeFile(n.Name, "/etc/cni/net.d/*.conflist")); len(confs) == 0 || filepath.Base(confs[0]) != "10-flannel.conflist" {
			t.Errorf("%s: configurations %v, want 10-flannel.conflist first", n.Name, confs)
		}
	}

	const ns = "fk-x"
	pods := threePods(t, c, client, ns)
	a, b, cPod := pods["a"], pods["b"], pods["c"]
	aNetns := podNetns(t, c, a)
	expectProbe(t, c, aNetns, b.Status.PodIP, ns+"/b", matrix.Connected)
	expectProbe(t, c, aNetns, cPod.Status.PodIP, ns+"/c", matrix.Connected)
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	ctx := context.Background()
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{}))
	waitOutcome(t, c, aNetns, b.Status.PodIP, ns+"/b", 20*time.Second, false)
	waitOutcome(t, c, aNetns, cPod.Status.PodIP, ns+"/c", 20*time.Second, false)
	if err := client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, policy.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitOutcome(t, c, aNetns, b.Status.PodIP, ns+"/b", 20*time.Second, true)
	waitOutcome(t, c, aNetns, cPod.Status.PodIP, ns+"/c", 20*time.Second, true)

	downLeavesNothing(t, c, name, linksBefore, firewallBefore, "flanneld", "kube-router")
}
