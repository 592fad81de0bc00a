package generate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// InNamespaces returns copies of policies generated over logical namespace
// names, moved to the real namespaces real maps them to: each policy's
// namespace and every kubernetes.io/metadata.name value its namespace
// selectors match on (matchLabels and matchExpressions), since the API
// server labels a namespace with its real name.
func InNamespaces(policies []*networkingv1.NetworkPolicy, real func(logical string) string) []*networkingv1.NetworkPolicy {
	out := make([]*networkingv1.NetworkPolicy, len(policies))
	for i, np := range policies {
		np = np.DeepCopy()
		np.Namespace = real(np.Namespace)
		for _, sel := range namespaceSelectors(np) {
			if name, ok := sel.MatchLabels[corev1.LabelMetadataName]; ok {
				sel.MatchLabels[corev1.LabelMetadataName] = real(name)
			}
			for j := range sel.MatchExpressions {
				if expr := &sel.MatchExpressions[j]; expr.Key == corev1.LabelMetadataName {
					for k, v := range expr.Values {
						expr.Values[k] = real(v)
					}
				}
			}
		}
		out[i] = np
	}
	return out
}

// SelectorCoverage counts the namespace selectors of policies' peers and how
// many of them select none of the namespaces: a peer behind such a
// selector matches no pod, so the cells it would have allowed are not
// covered.
type SelectorCoverage struct {
	Selectors     int `json:"selectors"`
	SelectNothing int `json:"selectNothing"`
}

func (c SelectorCoverage) String() string {
	return fmt.Sprintf("%d of %d generated namespace selectors select no namespace", c.SelectNothing, c.Selectors)
}

// Add returns the sum of two counts.
func (c SelectorCoverage) Add(o SelectorCoverage) SelectorCoverage {
	return SelectorCoverage{Selectors: c.Selectors + o.Selectors, SelectNothing: c.SelectNothing + o.SelectNothing}
}

// NamespaceSelectorCoverage evaluates every namespace selector of policies'
// peers against the namespaces (with their labels, including
// kubernetes.io/metadata.name, as the API server stores them).
func NamespaceSelectorCoverage(policies []*networkingv1.NetworkPolicy, namespaces []matrix.Namespace) (SelectorCoverage, error) {
	var c SelectorCoverage
	for _, np := range policies {
		for _, sel := range namespaceSelectors(np) {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil {
				return SelectorCoverage{}, fmt.Errorf("policy %s/%s: namespace selector %v: %w", np.Namespace, np.Name, sel, err)
			}
			c.Selectors++
			selected := false
			for _, ns := range namespaces {
				selected = selected || s.Matches(labels.Set(ns.Labels))
			}
			if !selected {
				c.SelectNothing++
			}
		}
	}
	return c, nil
}

// namespaceSelectors returns the namespace selectors of np's peers, in
// place.
func namespaceSelectors(np *networkingv1.NetworkPolicy) []*metav1.LabelSelector {
	var out []*metav1.LabelSelector
	add := func(peers []networkingv1.NetworkPolicyPeer) {
		for _, p := range peers {
			if p.NamespaceSelector != nil {
				out = append(out, p.NamespaceSelector)
			}
		}
	}
	for _, r := range np.Spec.Ingress {
		add(r.From)
	}
	for _, r := range np.Spec.Egress {
		add(r.To)
	}
	return out
}
