package matrix

import (
	"fmt"
	"net/netip"
	"strings"
)

// ImplementationDefinedIPBlockPodIP labels a verdict that holds only because
// an ipBlock peer matched a pod's IP. The API leaves it to the implementation
// whether ipBlock applies to pod IPs; the engine (like the upstream conformance
// tests) says it does.
const ImplementationDefinedIPBlockPodIP = "IPBlockPodIP"

// ImplementationDefinedNode labels every verdict between a pod and a
// host-network pod (a node). The API leaves node traffic to implementations;
// the engine says traffic with the pod's own node is always allowed (as
// Kubernetes documents, for kubelet health checks) and traffic with another
// node is judged like traffic with an address outside the cluster.
const ImplementationDefinedNode = "Node"

// Explanation says why one cell of the expected table is allowed or denied.
type Explanation struct {
	Cell
	// Summary is a one-line reason.
	Summary string `json:"summary"`
	// Self is set when the source is the destination: always allowed.
	Self bool `json:"self,omitempty"`
	// OwnNode is set when one end is a pod and the other a host-network pod
	// on the pod's node: always allowed.
	OwnNode bool      `json:"ownNode,omitempty"`
	Egress  Direction `json:"egress"`
	Ingress Direction `json:"ingress"`
	// ImplementationDefined lists the implementation-defined behaviours the
	// verdict depends on (see ImplementationDefinedIPBlockPodIP).
	ImplementationDefined []string `json:"implementationDefined,omitempty"`
}

// Direction explains one side of a connection: egress at the source or
// ingress at the destination.
type Direction struct {
	Direction string `json:"direction"`
	// Subject is the endpoint whose policies decide this side.
	Subject string `json:"subject"`
	// Pod is false when the subject is an external host or a host-network
	// pod, which no policy selects.
	Pod bool `json:"pod"`
	// IsolatedBy lists the policies that select the subject for this direction.
	IsolatedBy []string `json:"isolatedBy,omitempty"`
	Allowed    bool     `json:"allowed"`
	// AllowedBy lists every rule that allows the connection.
	AllowedBy []RuleRef `json:"allowedBy,omitempty"`
	// NotMatched says, for each rule of the isolating policies that does not
	// allow the connection, why not.
	NotMatched []string `json:"notMatched,omitempty"`
}

// RuleRef points at a rule of a policy, and the peer and port within it that
// matched. Peer or Port is -1 when the rule has no peers (matches every peer)
// or no ports (matches every port).
type RuleRef struct {
	Policy    string `json:"policy"`
	Direction string `json:"direction"`
	Rule      int    `json:"rule"`
	Peer      int    `json:"peer"`
	Port      int    `json:"port"`
	// PeerKind is podSelector, namespaceSelector, namespaceSelector+podSelector,
	// ipBlock, or "any" when the rule has no peers.
	PeerKind string `json:"peerKind"`
	// IPBlockPodIP is set when an ipBlock peer matched a pod's IP.
	IPBlockPodIP bool `json:"ipBlockPodIP,omitempty"`
}

func (r RuleRef) String() string {
	peers := "from"
	if r.Direction == egress.String() {
		peers = "to"
	}
	peer := fmt.Sprintf("%s[%d] (%s)", peers, r.Peer, r.PeerKind)
	if r.Peer < 0 {
		peer = "any peer"
	}
	port := fmt.Sprintf("ports[%d]", r.Port)
	if r.Port < 0 {
		port = "any port"
	}
	return fmt.Sprintf("%s %s[%d]: %s, %s", r.Policy, r.Direction, r.Rule, peer, port)
}

// Explain explains the cell from -> to on pp. The destination must serve pp.
func (e *Engine) Explain(from, to string, pp PortProtocol) (*Explanation, error) {
	s, ok := e.index[from]
	if !ok {
		return nil, fmt.Errorf("unknown source %q (endpoints are namespace/pod or an external host's name)", from)
	}
	d, ok := e.index[to]
	if !ok {
		return nil, fmt.Errorf("unknown destination %q (endpoints are namespace/pod or an external host's name)", to)
	}
	src, dst := e.endpoints[s], e.endpoints[d]
	if !dst.Serves(pp) {
		return nil, fmt.Errorf("%s does not serve %s", to, pp)
	}
	x := &Explanation{Cell: Cell{From: from, To: to, Port: pp.Port, Protocol: pp.Protocol}}
	if s == d {
		x.Self, x.Allowed = true, true
		x.Summary = "allowed: a pod can always reach itself"
		return x, nil
	}
	if e.ownNode(s, d) {
		x.OwnNode, x.Allowed = true, true
		x.Summary = "allowed: traffic between a pod and its own node (" + src.Node + ") is always allowed"
		x.ImplementationDefined = []string{ImplementationDefinedNode}
		return x, nil
	}
	dstIP, ok := dst.PrimaryIP()
	if !ok {
		return nil, fmt.Errorf("%s has no IP address", to)
	}
	srcIP, ok := src.IPFor(dstIP)
	if !ok {
		x.Summary = fmt.Sprintf("denied: %s has no address in the family of %s (%s)", from, to, dstIP)
		return x, nil
	}
	x.Egress = e.explainDirection(egress, s, d, dstIP, d, pp)
	x.Ingress = e.explainDirection(ingress, d, s, srcIP, d, pp)
	x.Allowed = x.Egress.Allowed && x.Ingress.Allowed
	for _, dir := range []Direction{x.Egress, x.Ingress} {
		if dir.Allowed && len(dir.AllowedBy) > 0 && onlyIPBlockPodIP(dir.AllowedBy) {
			x.ImplementationDefined = []string{ImplementationDefinedIPBlockPodIP}
		}
	}
	switch {
	case x.Allowed:
		x.Summary = "allowed: " + dirSummary(x.Egress) + "; " + dirSummary(x.Ingress)
	case !x.Egress.Allowed && !x.Ingress.Allowed:
		x.Summary = "denied by egress and by ingress: " + dirSummary(x.Egress) + "; " + dirSummary(x.Ingress)
	case !x.Egress.Allowed:
		x.Summary = "denied by egress: " + dirSummary(x.Egress)
	default:
		x.Summary = "denied by ingress: " + dirSummary(x.Ingress)
	}
	if !x.Allowed {
		x.ImplementationDefined = nil
	}
	if e.nodeCell(s, d) {
		x.ImplementationDefined = []string{ImplementationDefinedNode}
	}
	return x, nil
}

func onlyIPBlockPodIP(refs []RuleRef) bool {
	for _, r := range refs {
		if !r.IPBlockPodIP {
			return false
		}
	}
	return true
}

func dirSummary(d Direction) string {
	switch {
	case !d.Pod:
		return fmt.Sprintf("%s of %s is not restricted (not a pod policies select)", d.Direction, d.Subject)
	case len(d.IsolatedBy) == 0:
		return fmt.Sprintf("%s is not isolated for %s", d.Subject, d.Direction)
	case d.Allowed:
		return fmt.Sprintf("%s allowed by %s", d.Direction, d.AllowedBy[0])
	default:
		return fmt.Sprintf("%s is isolated for %s by %s and no rule allows it", d.Subject, d.Direction, strings.Join(d.IsolatedBy, ", "))
	}
}

// explainDirection evaluates one side: the policies of subject for dir, with
// the other endpoint seen at otherIP, on port pp of destination dst.
func (e *Engine) explainDirection(dir direction, subject, other int, otherIP netip.Addr, dst int, pp PortProtocol) Direction {
	sub := e.endpoints[subject]
	out := Direction{Direction: dir.String(), Subject: sub.Name, Pod: sub.Policed()}
	if !sub.Policed() || len(e.isolation[dir][subject]) == 0 {
		out.Allowed = true
		return out
	}
	otherEP := e.endpoints[other]
	for _, pi := range e.isolation[dir][subject] {
		p := e.policies[pi]
		out.IsolatedBy = append(out.IsolatedBy, p.name)
		if len(p.rules[dir]) == 0 {
			out.NotMatched = append(out.NotMatched, fmt.Sprintf("%s has no %s rules", p.name, dir))
		}
		for ri, r := range p.rules[dir] {
			ref := RuleRef{Policy: p.name, Direction: dir.String(), Rule: ri, Peer: -1, Port: -1, PeerKind: "any"}
			peerOK := len(r.peers) == 0
			for ki, k := range r.peers {
				if k.matches(other, otherIP) {
					peerOK = true
					ref.Peer, ref.PeerKind = ki, k.kind
					ref.IPBlockPodIP = k.block != nil && !otherEP.External
					break
				}
			}
			portOK := len(r.ports) == 0
			for j := range r.ports {
				if e.portsMatchAt(r.ports[j:j+1], dst, pp) {
					portOK = true
					ref.Port = j
					break
				}
			}
			switch {
			case peerOK && portOK:
				out.Allowed = true
				out.AllowedBy = append(out.AllowedBy, ref)
			case !peerOK && !portOK:
				out.NotMatched = append(out.NotMatched, fmt.Sprintf("%s %s[%d]: no peer matches %s and no port matches %s", p.name, dir, ri, otherEP.Name, pp))
			case !peerOK:
				out.NotMatched = append(out.NotMatched, fmt.Sprintf("%s %s[%d]: no peer matches %s (%s)", p.name, dir, ri, otherEP.Name, otherIP))
			default:
				out.NotMatched = append(out.NotMatched, fmt.Sprintf("%s %s[%d]: no port matches %s on %s", p.name, dir, ri, pp, e.endpoints[dst].Name))
			}
		}
	}
	return out
}

func (k peer) matches(endpoint int, ip netip.Addr) bool {
	if k.block != nil {
		return k.block.contains(ip)
	}
	return k.pods.has(endpoint)
}

// String renders the explanation for a terminal.
func (x *Explanation) String() string {
	var b strings.Builder
	verdict := "denied"
	if x.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(&b, "%s: %s\n  %s\n", x.Cell, verdict, x.Summary)
	if x.Self || x.OwnNode || x.Egress.Direction == "" {
		return b.String()
	}
	for _, d := range []Direction{x.Egress, x.Ingress} {
		fmt.Fprintf(&b, "  %s at %s: ", d.Direction, d.Subject)
		switch {
		case !d.Pod:
			b.WriteString("not a pod policies select, no policy applies\n")
			continue
		case len(d.IsolatedBy) == 0:
			b.WriteString("not isolated (no policy selects it for " + d.Direction + ")\n")
			continue
		}
		state := "denied"
		if d.Allowed {
			state = "allowed"
		}
		fmt.Fprintf(&b, "%s; isolated by %s\n", state, strings.Join(d.IsolatedBy, ", "))
		for _, r := range d.AllowedBy {
			fmt.Fprintf(&b, "    + %s\n", r)
		}
		for _, m := range d.NotMatched {
			fmt.Fprintf(&b, "    - %s\n", m)
		}
	}
	for _, l := range x.ImplementationDefined {
		fmt.Fprintf(&b, "  implementation-defined: %s\n", l)
	}
	return b.String()
}
