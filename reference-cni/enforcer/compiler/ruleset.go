package compiler

import (
	"fmt"
	"net/netip"
	"slices"
)

// Direction is the side of a connection a verdict governs, seen from a pod
// of the node: traffic it receives (Ingress) or sends (Egress).
type Direction int

// The two directions, usable as indexes of Ruleset.Directions.
const (
	Ingress Direction = iota
	Egress
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// Ruleset is the verdict data for the pods of one node: for each direction,
// a row per isolated local pod address saying which (remote, protocol, port)
// combinations are allowed for it. It is plain data, independent of how it is
// programmed. A row only holds remote addresses of its local address's family.
type Ruleset struct {
	// Directions holds the rows of each direction, by local address; a local
	// address without a row is not isolated in that direction.
	Directions [2]map[netip.Addr]*Row
}

// Row is what one isolated local address may exchange in one direction. A
// packet between the local address and a remote one is allowed when the
// remote is in AnyPort, or the remote, protocol and destination port (of the
// local pod for ingress, of the remote for egress) are in Ports or inside one
// of the Ranges. Every list is sorted and free of duplicates.
type Row struct {
	// AnyPort holds the remote addresses allowed on every protocol and port.
	AnyPort []netip.Addr
	// Ports holds the exact (remote, protocol, port) entries allowed.
	Ports []PortEntry
	// Ranges holds blocks of remote addresses, protocols and ports; they
	// never overlap (see Rectangle.Compare for the order).
	Ranges []Rectangle
}

// PortEntry is a remote address, an IP protocol number and a destination port.
type PortEntry struct {
	Remote   netip.Addr
	Protocol uint8
	Port     uint16
}

// Compare orders entries by remote address, protocol, then port.
func (e PortEntry) Compare(o PortEntry) int {
	if c := e.Remote.Compare(o.Remote); c != 0 {
		return c
	}
	if e.Protocol != o.Protocol {
		return int(e.Protocol) - int(o.Protocol)
	}
	return int(e.Port) - int(o.Port)
}

// Equal reports whether two rows allow the same entries.
func (r *Row) Equal(o *Row) bool {
	return slices.Equal(r.AnyPort, o.AnyPort) && slices.Equal(r.Ports, o.Ports) && slices.Equal(r.Ranges, o.Ranges)
}

// Len is the number of entries of the row.
func (r *Row) Len() int { return len(r.AnyPort) + len(r.Ports) + len(r.Ranges) }

// Rectangle is a block of remote addresses times a block of protocols and
// destination ports, all bounds inclusive. When it spans several protocols it
// spans every port of each.
type Rectangle struct {
	RemoteFirst, RemoteLast     netip.Addr
	ProtocolFirst, ProtocolLast uint8
	PortFirst, PortLast         uint16
}

// Compare orders rectangles by remote range, then protocol, then port.
func (r Rectangle) Compare(o Rectangle) int {
	if c := r.RemoteFirst.Compare(o.RemoteFirst); c != 0 {
		return c
	}
	if c := r.RemoteLast.Compare(o.RemoteLast); c != 0 {
		return c
	}
	switch {
	case r.ProtocolFirst != o.ProtocolFirst:
		return int(r.ProtocolFirst) - int(o.ProtocolFirst)
	case r.ProtocolLast != o.ProtocolLast:
		return int(r.ProtocolLast) - int(o.ProtocolLast)
	case r.PortFirst != o.PortFirst:
		return int(r.PortFirst) - int(o.PortFirst)
	}
	return int(r.PortLast) - int(o.PortLast)
}

func (r Rectangle) String() string {
	return fmt.Sprintf("%s-%s proto %d-%d port %d-%d", r.RemoteFirst, r.RemoteLast, r.ProtocolFirst, r.ProtocolLast, r.PortFirst, r.PortLast)
}

// NewRuleset returns an empty ruleset: nothing isolated, nothing enforced.
func NewRuleset() *Ruleset {
	return &Ruleset{Directions: [2]map[netip.Addr]*Row{{}, {}}}
}
