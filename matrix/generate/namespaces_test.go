package generate_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
)

// runNamespaces is a run's real namespaces for the logical x, y, z, labelled
// as the API server stores them, and kube-system.
func runNamespaces() (func(string) string, []matrix.Namespace) {
	real := map[string]string{"x": "x-run7-p1", "y": "y-run7-p1", "z": "z-run7-p1"}
	var nss []matrix.Namespace
	for _, logical := range []string{"x", "y", "z"} {
		nss = append(nss, matrix.Namespace{Name: real[logical], Labels: map[string]string{"ns": logical, corev1.LabelMetadataName: real[logical]}})
	}
	nss = append(nss, matrix.Namespace{Name: "kube-system", Labels: map[string]string{corev1.LabelMetadataName: "kube-system"}})
	return func(logical string) string {
		if r, ok := real[logical]; ok {
			return r
		}
		return logical
	}, nss
}

func TestInNamespacesRewritesMetadataNameSelectors(t *testing.T) {
	real, nss := runNamespaces()
	byName := func(sel metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: &sel}
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p"},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				byName(metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "y"}}),
				byName(metav1.LabelSelector{MatchLabels: map[string]string{"ns": "y"}}),
			}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				byName(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: []string{"z", "kube-system"}},
					{Key: "ns", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}},
				}}),
			}}},
		},
	}
	got := generate.InNamespaces([]*networkingv1.NetworkPolicy{np}, real)[0]
	if got.Namespace != "x-run7-p1" {
		t.Errorf("namespace %q, want x-run7-p1", got.Namespace)
	}
	if v := got.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName]; v != "y-run7-p1" {
		t.Errorf("matchLabels metadata.name %q, want y-run7-p1", v)
	}
	if v := got.Spec.Ingress[0].From[1].NamespaceSelector.MatchLabels["ns"]; v != "y" {
		t.Errorf("matchLabels ns %q, want y (the ns label is logical)", v)
	}
	exprs := got.Spec.Egress[0].To[0].NamespaceSelector.MatchExpressions
	if v := exprs[0].Values; len(v) != 2 || v[0] != "z-run7-p1" || v[1] != "kube-system" {
		t.Errorf("matchExpressions metadata.name values %v, want [z-run7-p1 kube-system]", v)
	}
	if v := exprs[1].Values; len(v) != 1 || v[0] != "x" {
		t.Errorf("matchExpressions ns values %v, want [x]", v)
	}
	if np.Namespace != "x" || np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "y" {
		t.Error("InNamespaces changed its input")
	}
	c, err := generate.NamespaceSelectorCoverage([]*networkingv1.NetworkPolicy{got}, nss)
	if err != nil {
		t.Fatal(err)
	}
	if want := (generate.SelectorCoverage{Selectors: 3}); c != want {
		t.Errorf("coverage %+v, want %+v", c, want)
	}
}

// The generated suite's cases, moved into a run's namespaces, have no
// kubernetes.io/metadata.name selector that selects nothing.
func TestGeneratedMetadataNameSelectorsSelectTheirNamespace(t *testing.T) {
	real, nss := runNamespaces()
	var byName, all generate.SelectorCoverage
	for _, c := range generate.Cases(1, 300, universe()) {
		for _, step := range c.Steps {
			policies := generate.InNamespaces(step, real)
			cov, err := generate.NamespaceSelectorCoverage(policies, nss)
			if err != nil {
				t.Fatal(err)
			}
			all = all.Add(cov)
			for _, np := range policies {
				one := np.DeepCopy()
				keepMetadataNamePeers(one)
				cov, err := generate.NamespaceSelectorCoverage([]*networkingv1.NetworkPolicy{one}, nss)
				if err != nil {
					t.Fatal(err)
				}
				byName = byName.Add(cov)
			}
		}
	}
	if byName.Selectors < 20 {
		t.Fatalf("only %d metadata.name selectors in 300 cases: the test no longer tests them", byName.Selectors)
	}
	if byName.SelectNothing != 0 {
		t.Errorf("%s (of the kubernetes.io/metadata.name ones)", byName)
	}
	t.Logf("all: %s; kubernetes.io/metadata.name: %s", all, byName)
}

func keepMetadataNamePeers(np *networkingv1.NetworkPolicy) {
	keep := func(peers []networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer {
		var out []networkingv1.NetworkPolicyPeer
		for _, p := range peers {
			if p.NamespaceSelector != nil {
				if _, ok := p.NamespaceSelector.MatchLabels[corev1.LabelMetadataName]; ok {
					out = append(out, p)
				}
			}
		}
		return out
	}
	for i := range np.Spec.Ingress {
		np.Spec.Ingress[i].From = keep(np.Spec.Ingress[i].From)
	}
	for i := range np.Spec.Egress {
		np.Spec.Egress[i].To = keep(np.Spec.Egress[i].To)
	}
}
