package matrix

// Table computes the expected truth table: every (source, destination,
// port/protocol) where the destination serves the port, allowed when egress
// from the source allows it and ingress at the destination allows it, or when
// the source is the destination, or when one is a pod and the other a
// host-network pod on its node. Egress from and ingress to an external host
// or a host-network pod are never restricted: only pods are selected by
// policies.
//
// It works on bitsets: for each port, one set of allowed sources per isolated
// destination and one set of allowed destinations per isolated source, each a
// union of rule matches, so the cost grows with pods x rules, not with cells.
func (e *Engine) Table() *Table {
	names := make([]string, len(e.endpoints))
	for i, ep := range e.endpoints {
		names[i] = ep.Name
	}
	t := NewTable(names, e.ports)
	n := len(e.endpoints)
	all := fullBitset(n)
	primary := make([]int, n) // family of each endpoint's primary address, -1 if none
	for i, ep := range e.endpoints {
		primary[i] = -1
		if ip, ok := ep.PrimaryIP(); ok {
			primary[i] = familyOf(ip)
		}
	}
	for p, pp := range e.ports {
		served := newBitset(n)
		for d, ep := range e.endpoints {
			if primary[d] >= 0 && ep.Serves(pp) {
				served.set(d)
			}
		}
		// allowedIn[d]: sources ingress at d allows; nil when d is not isolated.
		allowedIn := make([]bitset, n)
		for d := range n {
			if len(e.isolation[ingress][d]) == 0 || !served.has(d) {
				continue
			}
			in := newBitset(n)
			for _, pi := range e.isolation[ingress][d] {
				for _, r := range e.policies[pi].rules[ingress] {
					if e.portsMatchAt(r.ports, d, pp) {
						in.or(r.match[primary[d]])
					}
				}
			}
			allowedIn[d] = in
		}
		destinations := portDestinations{engine: e, pp: pp, all: all}
		out, present := t.allowed[p], t.present[p]
		for s := range n {
			allowedOut := all
			if len(e.isolation[egress][s]) > 0 {
				allowedOut = newBitset(n)
				for _, pi := range e.isolation[egress][s] {
					for ri := range e.policies[pi].rules[egress] {
						r := &e.policies[pi].rules[egress][ri]
						allowedOut.orAnd(r.targets, destinations.of(r.ports))
					}
				}
			}
			for d := range n {
				if !served.has(d) {
					continue
				}
				present.set(s*n + d)
				ok := s == d || e.ownNode(s, d) || (e.hasFamily[primary[d]].has(s) && allowedOut.has(d) && (allowedIn[d] == nil || allowedIn[d].has(s)))
				if ok {
					out.set(s*n + d)
				}
			}
		}
	}
	return t
}

// portsMatchAt reports whether a rule's ports admit pp at destination d,
// resolving named ports on d's containers.
func (e *Engine) portsMatchAt(ports []port, d int, pp PortProtocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.matchesNumber(pp) {
			return true
		}
		if p.name != "" && p.protocol == pp.Protocol {
			if pods, ok := e.named[namedPort{name: p.name, protocol: p.protocol, port: pp.Port}]; ok && pods.has(d) {
				return true
			}
		}
	}
	return false
}

// portDestinations computes, for one port/protocol, the destinations at which
// a rule's ports admit it.
type portDestinations struct {
	engine *Engine
	pp     PortProtocol
	all    bitset
}

func (pd portDestinations) of(ports []port) bitset {
	if len(ports) == 0 {
		return pd.all
	}
	var out bitset
	for i := range ports {
		p := &ports[i]
		if p.matchesNumber(pd.pp) {
			return pd.all
		}
		if p.name == "" || p.protocol != pd.pp.Protocol {
			continue
		}
		pods, ok := pd.engine.named[namedPort{name: p.name, protocol: p.protocol, port: pd.pp.Port}]
		if !ok {
			continue
		}
		if out == nil {
			out = pd.engine.empty()
		}
		out.or(pods)
	}
	if out == nil {
		return pd.engine.empty()
	}
	return out
}

func (e *Engine) empty() bitset { return newBitset(len(e.endpoints)) }
