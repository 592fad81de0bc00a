package compiler

import (
	"cmp"
	"net/netip"
	"slices"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct {
	first, last netip.Addr
}

// prefixRange returns the addresses of a prefix, after masking it.
func prefixRange(p netip.Prefix) addrRange {
	p = p.Masked()
	first := p.Addr()
	b := first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return addrRange{first: first, last: last}
}

// everyAddress returns the range of every address of ip's family.
func everyAddress(is4 bool) addrRange {
	if is4 {
		return prefixRange(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
	}
	return prefixRange(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
}

func (r addrRange) contains(ip netip.Addr) bool {
	return r.first.Compare(ip) <= 0 && ip.Compare(r.last) <= 0
}

// subtract removes cut from every range of rs. The ranges must be of cut's
// family; the result stays sorted if rs was.
func subtract(rs []addrRange, cut addrRange) []addrRange {
	var out []addrRange
	for _, r := range rs {
		if cut.last.Compare(r.first) < 0 || r.last.Compare(cut.first) < 0 {
			out = append(out, r)
			continue
		}
		if r.first.Compare(cut.first) < 0 {
			out = append(out, addrRange{first: r.first, last: cut.first.Prev()})
		}
		if cut.last.Compare(r.last) < 0 {
			out = append(out, addrRange{first: cut.last.Next(), last: r.last})
		}
	}
	return out
}

// span is an inclusive range in the combined protocol/port space, where a
// value is protocol<<16 | port: one protocol's port range is a span, and so is
// "every protocol, every port".
type span struct {
	first, last uint32
}

const lastPort = 0xffff

// everyProtocolAndPort returns the span of every protocol and port.
func everyProtocolAndPort() span { return span{first: 0, last: 0xff<<16 | lastPort} }

func protocolPorts(protocol uint8, first, last uint16) span {
	return span{first: uint32(protocol)<<16 | uint32(first), last: uint32(protocol)<<16 | uint32(last)}
}

// rect is a block of remote addresses allowed on a span of protocols/ports.
// Rects may overlap; disjointRectangles turns them into Rectangles that don't.
type rect struct {
	remote addrRange
	ports  span
}

// disjointRectangles returns rectangles that cover exactly the union of the
// rects, never overlap, and are sorted. It sweeps the remote addresses: at
// every address where some rect starts or ends, the union of the spans of the
// rects covering it is recomputed; runs of adjacent addresses with the same
// union become one rectangle per span.
func disjointRectangles(rects []rect) []Rectangle {
	if len(rects) == 0 {
		return nil
	}
	type event struct {
		at    netip.Addr
		ports span
		add   bool
	}
	events := make([]event, 0, 2*len(rects))
	for _, r := range rects {
		events = append(events, event{at: r.remote.first, ports: r.ports, add: true})
		if end := r.remote.last.Next(); end.IsValid() {
			events = append(events, event{at: end, ports: r.ports})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return a.at.Compare(b.at) })

	type run struct {
		remote addrRange
		spans  []span
	}
	var runs []run
	active := map[span]int{}
	for i := 0; i < len(events); {
		at := events[i].at
		for ; i < len(events) && events[i].at == at; i++ {
			if events[i].add {
				active[events[i].ports]++
			} else if active[events[i].ports]--; active[events[i].ports] == 0 {
				delete(active, events[i].ports)
			}
		}
		if len(active) == 0 {
			continue
		}
		last := everyAddress(at.Is4()).last
		if i < len(events) {
			last = events[i].at.Prev()
		}
		spans := unionSpans(active)
		if n := len(runs); n > 0 && runs[n-1].remote.last.Next() == at && slices.Equal(runs[n-1].spans, spans) {
			runs[n-1].remote.last = last
			continue
		}
		runs = append(runs, run{remote: addrRange{first: at, last: last}, spans: spans})
	}

	var out []Rectangle
	for _, r := range runs {
		for _, s := range r.spans {
			out = append(out, spanRectangles(r.remote, s)...)
		}
	}
	return out
}

// unionSpans merges the spans (keys of active) into sorted, disjoint,
// non-adjacent spans.
func unionSpans(active map[span]int) []span {
	spans := make([]span, 0, len(active))
	for s := range active {
		spans = append(spans, s)
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	out := spans[:1]
	for _, s := range spans[1:] {
		cur := &out[len(out)-1]
		if s.first <= cur.last+1 {
			cur.last = max(cur.last, s.last)
			continue
		}
		out = append(out, s)
	}
	return out
}

// spanRectangles cuts a span at protocol boundaries: a partial first
// protocol, whole protocols, a partial last protocol.
func spanRectangles(remote addrRange, s span) []Rectangle {
	protoFirst, portFirst := uint8(s.first>>16), uint16(s.first)
	protoLast, portLast := uint8(s.last>>16), uint16(s.last)
	rectangle := func(pf, pl uint8, from, to uint16) Rectangle {
		return Rectangle{
			RemoteFirst: remote.first, RemoteLast: remote.last,
			ProtocolFirst: pf, ProtocolLast: pl,
			PortFirst: from, PortLast: to,
		}
	}
	if protoFirst == protoLast {
		return []Rectangle{rectangle(protoFirst, protoLast, portFirst, portLast)}
	}
	var out []Rectangle
	wholeFirst, wholeLast := int(protoFirst), int(protoLast)
	if portFirst != 0 {
		out = append(out, rectangle(protoFirst, protoFirst, portFirst, lastPort))
		wholeFirst++
	}
	if portLast != lastPort {
		wholeLast--
	}
	if wholeFirst <= wholeLast {
		out = append(out, rectangle(uint8(wholeFirst), uint8(wholeLast), 0, lastPort))
	}
	if portLast != lastPort {
		out = append(out, rectangle(protoLast, protoLast, 0, portLast))
	}
	return out
}
