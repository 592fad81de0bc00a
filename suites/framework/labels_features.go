package framework

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reports"
)

// Suite labels.
const (
	LabelRecipe      = "Recipe"
	LabelConformance = "Conformance"
	LabelGenerated   = "Generated"
)

// FeatureLabels returns the feature labels of a set of policies: Egress,
// NamedPort, EndPort, IPBlock, SCTP, UDP (the generator's label names).
func FeatureLabels(policies []*networkingv1.NetworkPolicy) []string {
	set := map[string]bool{}
	for _, np := range policies {
		d := matrix.DefaultPolicy(np)
		if slices.Contains(d.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			set[generate.LabelEgress] = true
		}
		var ports []networkingv1.NetworkPolicyPort
		var peers []networkingv1.NetworkPolicyPeer
		for _, r := range d.Spec.Ingress {
			ports, peers = append(ports, r.Ports...), append(peers, r.From...)
		}
		for _, r := range d.Spec.Egress {
			ports, peers = append(ports, r.Ports...), append(peers, r.To...)
		}
		for _, p := range ports {
			if p.Port != nil && p.Port.Type == intstr.String {
				set[generate.LabelNamedPort] = true
			}
			if p.EndPort != nil {
				set[generate.LabelEndPort] = true
			}
			switch *p.Protocol {
			case corev1.ProtocolSCTP:
				set[generate.LabelSCTP] = true
			case corev1.ProtocolUDP:
				set[generate.LabelUDP] = true
			}
		}
		for _, p := range peers {
			if p.IPBlock != nil {
				set[generate.LabelIPBlock] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ImplementationDefinedLabels returns the implementation-defined behaviours
// some cell of the model's expected table depends on (IPBlockPodIP: an
// ipBlock matched a pod IP; Node: a pod and a node), each a label, followed
// by ImplementationDefined, and nothing when there is none.
func ImplementationDefinedLabels(model *matrix.Model, policies []*networkingv1.NetworkPolicy) ([]string, error) {
	e, err := matrix.NewEngine(model, policies)
	if err != nil {
		return nil, err
	}
	var found []string
	e.Table().Each(func(c matrix.Cell) bool {
		x, err := e.Explain(c.From, c.To, c.PortProtocol())
		if err == nil {
			found = append(found, x.ImplementationDefined...)
		}
		return true
	})
	if len(found) == 0 {
		return nil, nil
	}
	slices.Sort(found)
	return append(slices.Compact(found), reports.LabelImplementationDefined), nil
}

// RecipeScenario turns a seed recipe into a scenario with its labels.
func RecipeScenario(r recipes.Recipe) (*Scenario, error) {
	s := &Scenario{ID: "recipes/" + r.ID, Title: r.Title, Namespaces: r.Namespaces, Pods: r.Pods, Externals: r.Externals, Services: r.Services}
	labels := append([]string{LabelRecipe}, r.Labels...)
	model := r.Model()
	var inForce []*networkingv1.NetworkPolicy
	for i, st := range r.Steps {
		step := Step{Name: st.Name, Manifests: st.Apply, Delete: st.Delete, Rejected: st.Rejected}
		for _, o := range st.Expect {
			step.Expect = append(step.Expect, Outcome{From: o.From, To: o.To, Port: o.PortProtocol(), Allowed: o.Allowed, Doc: o.Doc, Via: o.Via})
		}
		s.Steps = append(s.Steps, step)
		if st.Rejected != "" {
			continue
		}
		next, err := st.Policies(inForce)
		if err != nil {
			return nil, err
		}
		if i > 0 && len(inForce) > 0 && (len(st.Delete) > 0 || replaces(inForce, next)) {
			labels = append(labels, generate.LabelUpdate)
		}
		inForce = next
		labels = append(labels, FeatureLabels(inForce)...)
		implDefined, err := ImplementationDefinedLabels(model, inForce)
		if err != nil {
			return nil, err
		}
		labels = append(labels, implDefined...)
	}
	slices.Sort(labels)
	s.Labels = slices.Compact(labels)
	return s, nil
}

// replaces reports whether next redefines a policy of before.
func replaces(before, next []*networkingv1.NetworkPolicy) bool {
	names := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range before {
		names[np.Namespace+"/"+np.Name] = np
	}
	for _, np := range next {
		if old, ok := names[np.Namespace+"/"+np.Name]; ok && old != np {
			return true
		}
	}
	return false
}
