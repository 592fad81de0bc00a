package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

// hostFirewall is what iptables and ipset show in this machine's own
// network namespace.
func hostFirewall(t *testing.T) string {
	t.Helper()
	var all []string
	for _, args := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"ipset", "list"}} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// iptables-save stamps its output with the time.
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "#") {
				all = append(all, line)
			}
		}
	}
	return strings.Join(all, "\n")
}

// inNode runs a command in a node's network namespace.
func inNode(t *testing.T, node string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + netns.Path(node), "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), node, err, out)
	}
	return string(out)
}

// TestKubeRouter brings the local cluster up with kube-router's policy
// controller from its own manifest: it runs, ready, on both nodes instead
// of the reference enforcer, a deny-all policy blocks a probe and removing
// it lets the probe through again, and down leaves nothing, in the nodes or
// in this machine's own namespace.
func TestKubeRouter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save", "ipset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("kube-router execs %s: install Debian's iptables and ipset (.ci/run does)", tool)
		}
	}
	linksBefore, firewallBefore := hostLinks(t), hostFirewall(t)
	name := fmt.Sprintf("kr%d", os.Getpid())
	c, client := startCluster(t, name, 2, func(o *local.Options) {
		o.CNI = local.CNIKubeRouter
		o.KubeRouter = controlplane.BuildOptions{SourceDir: "kuberouterbin"}
	})
	ctx := context.Background()

	expectReadyOnEveryNode(t, c, client, "kube-system", "k8s-app=kube-router", "kube-router")
	for _, p := range c.Processes {
		if strings.HasSuffix(p.Name, "/enforcer") {
			t.Errorf("the reference enforcer runs (%s) beside kube-router", p.Name)
		}
	}
	for _, n := range c.Nodes {
		if rules := inNode(t, n.Netns, "iptables-save"); !strings.Contains(rules, ":KUBE-ROUTER-FORWARD") {
			t.Errorf("%s has no KUBE-ROUTER-FORWARD chain:\n%s", n.Name, rules)
		}
	}

	const ns = "kr-x"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "a", c.Nodes[0].Name), metav1.CreateOptions{}))
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "b", c.Nodes[1].Name), metav1.CreateOptions{}))
	pods := waitRunning(t, client, ns, 2)
	aNetns, b := podNetns(t, c, pods["a"]), pods["b"]
	expectProbe(t, c, aNetns, b.Status.PodIP, ns+"/b", matrix.Connected)

	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{}))
	waitOutcome(t, c, aNetns, b.Status.PodIP, ns+"/b", 20*time.Second, false)
	if err := client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, policy.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitOutcome(t, c, aNetns, b.Status.PodIP, ns+"/b", 20*time.Second, true)

	downLeavesNothing(t, c, name, linksBefore, firewallBefore, "kube-router")
}

// expectReadyOnEveryNode checks that a DaemonSet's pods (namespace,
// label selector) are Running and Ready on every node of c.
func expectReadyOnEveryNode(t *testing.T, c *local.Cluster, client kubernetes.Interface, namespace, selector, what string) {
	t.Helper()
	pods, err := client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && podReady(p) {
			nodes[p.Spec.NodeName] = true
		}
	}
	if len(nodes) != len(c.Nodes) {
		t.Errorf("%s is Running and Ready on %v, want every node", what, nodes)
	}
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitOutcome probes until the probe connects (connected) or does not,
// failing after timeout, and logs how long it took.
func waitOutcome(t *testing.T, c *local.Cluster, fromNetns, host, expect string, timeout time.Duration, connected bool) {
	t.Helper()
	start := time.Now()
	for {
		res := probe(t, c, fromNetns, host, expect, 300*time.Millisecond)
		if (res.Outcome == matrix.Connected) == connected {
			t.Logf("%s -> %s: %s after %s", fromNetns, host, res.Outcome, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s -> %s: still %s after %s", fromNetns, host, res.Outcome, timeout)
		}
	}
}
