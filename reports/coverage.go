package reports

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// SubjectOf returns the subject cells of a step: the cells of its expected
// table (computed by the engine for model and policies) that show what the
// step's policies do, so that a case none of whose subject cells was probed
// tested nothing of what it is about (it is Incomplete). The rule:
//
//   - when the policies have ipBlock peers, the cells whose verdict those
//     peers decide: the cells whose verdict changes when every ipBlock peer
//     is taken away (a rule left without peers then matches nothing);
//   - otherwise, or when no cell depends on an ipBlock, the cells whose
//     verdict differs from having no policy at all: the denied cells.
//
// So an ipBlock case about external hosts has the external cells as its
// subject, and a default-deny case the cells it denies.
func SubjectOf(model *matrix.Model, policies []*networkingv1.NetworkPolicy, expected *matrix.Table) (*matrix.Table, error) {
	subject := matrix.NewTable(expected.Endpoints(), expected.Ports())
	if withoutIPBlocks, changed := withoutIPBlockPeers(policies); changed {
		engine, err := matrix.NewEngine(model, withoutIPBlocks)
		if err != nil {
			return nil, fmt.Errorf("computing the table without ipBlock peers: %w", err)
		}
		other := engine.Table()
		n := 0
		var setErr error
		expected.Each(func(c matrix.Cell) bool {
			if allowed, ok := other.Get(c.From, c.To, c.PortProtocol()); ok && allowed != c.Allowed {
				n++
				setErr = subject.Set(c.From, c.To, c.PortProtocol(), c.Allowed)
			}
			return setErr == nil
		})
		if setErr != nil {
			return nil, fmt.Errorf("recording the subject: %w", setErr)
		}
		if n > 0 {
			return subject, nil
		}
	}
	var setErr error
	expected.Each(func(c matrix.Cell) bool {
		if !c.Allowed {
			setErr = subject.Set(c.From, c.To, c.PortProtocol(), false)
		}
		return setErr == nil
	})
	if setErr != nil {
		return nil, fmt.Errorf("recording the subject: %w", setErr)
	}
	return subject, nil
}

// withoutIPBlockPeers returns copies of the policies with every ipBlock
// peer removed, and whether there was one. A rule left without peers is
// removed (it matched nothing but those peers), and policyTypes are made
// explicit so that removing rules never changes which pods are isolated.
func withoutIPBlockPeers(policies []*networkingv1.NetworkPolicy) ([]*networkingv1.NetworkPolicy, bool) {
	out := make([]*networkingv1.NetworkPolicy, len(policies))
	changed := false
	for i, np := range policies {
		cp := np.DeepCopy()
		if len(cp.Spec.PolicyTypes) == 0 {
			cp.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(cp.Spec.Egress) > 0 {
				cp.Spec.PolicyTypes = append(cp.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		}
		var ingress []networkingv1.NetworkPolicyIngressRule
		for _, rule := range cp.Spec.Ingress {
			peers, removed := peersWithoutIPBlocks(rule.From)
			changed = changed || removed
			if removed && len(peers) == 0 {
				continue
			}
			rule.From = peers
			ingress = append(ingress, rule)
		}
		var egress []networkingv1.NetworkPolicyEgressRule
		for _, rule := range cp.Spec.Egress {
			peers, removed := peersWithoutIPBlocks(rule.To)
			changed = changed || removed
			if removed && len(peers) == 0 {
				continue
			}
			rule.To = peers
			egress = append(egress, rule)
		}
		cp.Spec.Ingress, cp.Spec.Egress = ingress, egress
		out[i] = cp
	}
	return out, changed
}

func peersWithoutIPBlocks(peers []networkingv1.NetworkPolicyPeer) ([]networkingv1.NetworkPolicyPeer, bool) {
	var out []networkingv1.NetworkPolicyPeer
	for _, p := range peers {
		if p.IPBlock == nil {
			out = append(out, p)
		}
	}
	return out, len(out) < len(peers)
}

// Reachable returns the part of an expected table a provider can probe: the
// table and endpoints without those for which reachable is false, ready for
// matrix.Runner. The whole table goes in Coverage.Expected, so that the cells
// left out are counted and shown as not probed.
func Reachable(expected *matrix.Table, endpoints []matrix.Endpoint, reachable func(matrix.Endpoint) bool) (*matrix.Table, []matrix.Endpoint, error) {
	var kept []matrix.Endpoint
	names := map[string]bool{}
	for _, ep := range endpoints {
		if reachable(ep) {
			kept = append(kept, ep)
			names[ep.Name] = true
		}
	}
	if len(kept) == len(endpoints) {
		return expected, endpoints, nil
	}
	keptNames := make([]string, len(kept))
	for i, ep := range kept {
		keptNames[i] = ep.Name
	}
	out := matrix.NewTable(keptNames, expected.Ports())
	var err error
	expected.Each(func(c matrix.Cell) bool {
		if names[c.From] && names[c.To] {
			err = out.Set(c.From, c.To, c.PortProtocol(), c.Allowed)
		}
		return err == nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("copying the reachable cells: %w", err)
	}
	return out, kept, nil
}
