package routes

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testNode builds a Node with the given pod CIDRs and InternalIPs.
func testNode(name string, podCIDRs []string, internalIPs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: podCIDRs}}
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	for _, ip := range internalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func TestDesiredRoutes(t *testing.T) {
	nodes := []*corev1.Node{
		testNode("n3", []string{"10.244.3.0/24"}, "10.250.0.13"),
		testNode("n1", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "10.250.0.11", "fd00:250::11"),
		testNode("n2", []string{"10.244.2.0/24", "fd00:10:244:2::/64"}, "fd00:250::12", "10.250.0.12"),
		testNode("no-cidr", nil, "10.250.0.14"),
		testNode("v4-only-ip", []string{"10.244.5.0/24", "fd00:10:244:5::/64"}, "10.250.0.15"),
		testNode("bad-cidr", []string{"10.244.6.0/33"}, "10.250.0.16"),
	}
	routes, skipped := DesiredRoutes("n1", nodes)
	var got []string
	for _, r := range routes {
		got = append(got, r.Dst.String()+" via "+r.Via.String())
	}
	want := []string{
		"10.244.2.0/24 via 10.250.0.12",
		"10.244.3.0/24 via 10.250.0.13",
		"10.244.5.0/24 via 10.250.0.15",
		"fd00:10:244:2::/64 via fd00:250::12",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	var skippedNodes []string
	for _, s := range skipped {
		skippedNodes = append(skippedNodes, s.Node)
	}
	slices.Sort(skippedNodes)
	if want := []string{"bad-cidr", "no-cidr", "v4-only-ip"}; !slices.Equal(skippedNodes, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
}

func TestPodCIDRsFallsBackToSingleField(t *testing.T) {
	n := &corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.7.0/24"}}
	cidrs, err := PodCIDRs(n)
	if err != nil || len(cidrs) != 1 || cidrs[0].String() != "10.244.7.0/24" {
		t.Errorf("PodCIDRs = %v, %v", cidrs, err)
	}
}
