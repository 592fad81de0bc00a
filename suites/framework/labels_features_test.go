package framework

import (
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestImplementationDefinedLabels checks that each implementation-defined
// behaviour a case's cells depend on becomes a label, with
// ImplementationDefined.
func TestImplementationDefinedLabels(t *testing.T) {
	serve := []matrix.Container{{Name: "serve-80-tcp", Ports: []matrix.ContainerPort{{ContainerPort: 80}}}}
	pods := []matrix.Pod{
		{Namespace: "x", Name: "a", IPs: []string{"10.244.1.10"}, Node: "node1", Containers: serve},
		{Namespace: "x", Name: "b", IPs: []string{"10.244.2.10"}, Node: "node2", Containers: serve},
	}
	host := matrix.Pod{Namespace: "nodes", Name: "host-node1", IPs: []string{"10.250.0.11"}, Node: "node1", HostNetwork: true, Containers: serve}
	fromPods := []*networkingv1.NetworkPolicy{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "from-pods"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.244.0.0/16"}}}}}},
	}}
	namespaces := []matrix.Namespace{{Name: "x"}, {Name: "nodes"}}
	cases := []struct {
		name     string
		pods     []matrix.Pod
		policies []*networkingv1.NetworkPolicy
		want     []string
	}{
		{"pods only, no policy", pods, nil, nil},
		{"an ipBlock over pod IPs", pods, fromPods, []string{"IPBlockPodIP", "ImplementationDefined"}},
		{"a node endpoint", append(slices.Clone(pods), host), nil, []string{"Node", "ImplementationDefined"}},
		{"both", append(slices.Clone(pods), host), fromPods, []string{"IPBlockPodIP", "Node", "ImplementationDefined"}},
	}
	for _, tc := range cases {
		got, err := ImplementationDefinedLabels(&matrix.Model{Namespaces: namespaces, Pods: tc.pods}, tc.policies)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
