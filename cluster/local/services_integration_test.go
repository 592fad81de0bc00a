package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	inetns "github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestServicesAndDNS checks the local cluster's Services end to end, with
// the real kube-proxy and CoreDNS: a ClusterIP, a DNS name and a NodePort
// (from an external host, through every node) reach the backend pod; a
// NetworkPolicy on the backend applies to traffic that arrives through the
// Service (it sees the pod's port, not the Service's); a default-deny egress
// policy blocks DNS, and allowing UDP and TCP 53 (seed 004's DNS-allow
// recipe) restores it.
func TestServicesAndDNS(t *testing.T) {
	name := fmt.Sprintf("s%d", os.Getpid())
	c, client := startCluster(t, name, 2)
	ctx := context.Background()

	const ns = "svc-x"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	for _, p := range []struct{ name, node, labels string }{
		{"web", "node2", "app=web"}, {"client", "node1", "role=client"}, {"other", "node2", "role=other"},
	} {
		pod := probePod(ns, p.name, p.node)
		k, v, _ := strings.Cut(p.labels, "=")
		pod.Labels = map[string]string{k: v}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}))
	}
	pods := waitRunning(t, client, ns, 3)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
		},
	}
	svc, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, client, ns, "web", pods["web"].Status.PodIP)
	if _, err := c.AddExternal(ctx, "outside", []netip.Addr{netip.MustParseAddr("192.0.2.30")}, nil); err != nil {
		t.Fatal(err)
	}
	outside := netns.Path(c.Externals[len(c.Externals)-1].Netns)

	from := func(pod string) source { return source{netns: podNetns(t, c, pods[pod]), namespace: ns} }
	clusterIP := svc.Spec.ClusterIP
	nodePort := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
	const web = ns + "/web"
	connects := func(t *testing.T, s source, host, port string, want bool) {
		t.Helper()
		expectReach(t, c, s, want, "--host", host, "--port", port, "--protocol", "TCP", "--expect", web)
	}

	t.Run("the Service reaches its pod", func(t *testing.T) {
		// kube-proxy programs the Service within its sync period.
		eventually(t, "the ClusterIP answers", func() bool {
			return reach(t, c, from("client"), "--host", clusterIP, "--port", "8080", "--expect", web).Outcome.Reached()
		})
		connects(t, from("other"), clusterIP, "8080", true) // backend on the same node
		connects(t, from("client"), "web", "8080", true)
		connects(t, from("client"), "web."+ns, "8080", true)
		for _, n := range c.Nodes {
			connects(t, source{netns: outside}, n.IP.String(), nodePort, true)
		}
	})

	t.Run("a policy on the backend applies through the Service", func(t *testing.T) {
		tcp := corev1.ProtocolTCP
		port := intstr.FromInt32(80)
		policy := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "web-from-client", Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
				}},
			},
		}
		noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{}))
		eventually(t, "the policy denies other through the ClusterIP", func() bool {
			return !reach(t, c, from("other"), "--host", clusterIP, "--port", "8080", "--expect", web).Outcome.Reached()
		})
		// The rule names the pod's port 80: the client reaches the Service's
		// port 8080, so the enforcer sees the translated connection.
		connects(t, from("client"), clusterIP, "8080", true)
		connects(t, from("client"), "web", "8080", true)
		connects(t, from("other"), "web", "8080", false)
		for _, n := range c.Nodes {
			connects(t, source{netns: outside}, n.IP.String(), nodePort, false)
		}
		if err := client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, policy.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("default-deny egress blocks DNS, the DNS-allow recipe restores it", func(t *testing.T) {
		lookup := func(s source, want bool) {
			t.Helper()
			expectReach(t, c, s, want, "--host", "web", "--protocol", "DNS")
		}
		lookup(from("client"), true)
		deny := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "client-egress", Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			},
		}
		deny, err := client.NetworkingV1().NetworkPolicies(ns).Create(ctx, deny, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "default-deny egress blocks the lookup", func() bool {
			res := reach(t, c, from("client"), "--host", "web", "--protocol", "DNS")
			return res.Outcome == matrix.Timeout
		})
		lookup(from("other"), true)

		udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
		dns := intstr.FromInt32(53)
		deny.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: &tcp, Port: &dns}, {Protocol: &udp, Port: &dns},
		}}}
		noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Update(ctx, deny, metav1.UpdateOptions{}))
		eventually(t, "allowing port 53 restores the lookup", func() bool {
			return reach(t, c, from("client"), "--host", "web", "--protocol", "DNS").Outcome.Reached()
		})
		// The name resolves, the connection to the Service is still denied.
		connects(t, from("client"), "web", "8080", false)
	})
}

// source is where a probe runs: a network namespace, and for a pod its
// namespace, which decides its DNS search list.
type source struct{ netns, namespace string }

// reach runs `netpolcheck-probe connect` with args in the source's network
// namespace, with the pod's DNS settings, and returns its result.
func reach(t *testing.T, c *local.Cluster, s source, args ...string) matrix.Result {
	t.Helper()
	args = append([]string{"connect", "--timeout", "1s"}, args...)
	if s.namespace != "" {
		args = append(args, local.DNSArgs(s.namespace)...)
	}
	cmd := exec.Command(filepath.Join(c.BinDir, local.ProbeBinary), args...)
	var out strings.Builder
	cmd.Stdout = &out
	if err := inetns.Start(s.netns, cmd); err != nil {
		t.Fatalf("probing from %s: %v", s.netns, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probing from %s: %v", s.netns, err)
	}
	var res matrix.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("probe output %q: %v", out.String(), err)
	}
	return res
}

// expectReach probes once and checks whether the probe connected.
func expectReach(t *testing.T, c *local.Cluster, s source, want bool, args ...string) {
	t.Helper()
	if res := reach(t, c, s, args...); res.Outcome.Reached() != want {
		t.Errorf("from %s: %s: %s (peer %q, %s), want reached=%v", s.netns, strings.Join(args, " "), res.Outcome, res.Peer, res.Detail, want)
	}
}

// eventually waits up to 10s for ok.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	waitFor(t, 10*time.Second, what, ok)
}

// waitEndpoints waits until the Service's EndpointSlices list ip as ready.
func waitEndpoints(t *testing.T, client kubernetes.Interface, ns, service, ip string) {
	t.Helper()
	waitFor(t, 20*time.Second, "the endpoints of "+service, func() bool {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return false
		}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && len(e.Addresses) > 0 && e.Addresses[0] == ip {
					return true
				}
			}
		}
		return false
	})
}
