package sctp

import (
	"net/netip"
	"time"

	"github.com/netpolcheck/netpolcheck/probes/sctp/packet"
)

// Handler answers the one request message of an association with one answer
// message.
type Handler func(request []byte) []byte

// advertisedWindow is the receive window both sides announce; probes carry a
// few hundred bytes.
const advertisedWindow = 65536

// maxServerAssociations bounds the established server associations kept at
// once; COOKIE ECHOs beyond it are dropped until older ones finish or expire.
const maxServerAssociations = 65536

// serverIdle is how long an established server association is kept without
// hearing from the peer.
const serverIdle = 60 * time.Second

// serverKey identifies an established server association.
type serverKey struct {
	local, remote netip.AddrPort
	localTag      uint32
}

// serverAssoc is what the server keeps after a valid COOKIE ECHO: enough to
// answer the peer's one DATA chunk (again, if the peer retransmits it) and to
// shut down.
type serverAssoc struct {
	stateCookie
	answer   []byte
	lastSeen time.Time
}

// responder is the server side of the userspace SCTP endpoint. It is
// stateless until a COOKIE ECHO comes back (the state travels in the HMAC-
// signed cookie), then answers one request per association, acknowledges,
// and completes the shutdown the client starts. It has no timers: the client
// retransmits, and the responder answers duplicates the same way.
// It is not safe for concurrent use; the endpoint serialises calls.
type responder struct {
	secret []byte
	random func() uint32
	now    func() time.Time
	assocs map[serverKey]*serverAssoc
}

func newResponder(secret []byte, random func() uint32, now func() time.Time) *responder {
	return &responder{secret: secret, random: random, now: now, assocs: map[serverKey]*serverAssoc{}}
}

// handle processes one packet received on local from remote and returns the
// packets to send back. handler is nil when no listener serves the
// destination port: an INIT is then answered with an ABORT (refused), as a
// kernel SCTP stack without a listener does.
func (r *responder) handle(in *packet.Packet, local, remote netip.Addr, handler Handler) []*packet.Packet {
	first := in.Chunks[0]
	switch first.Type {
	case packet.TypeInit:
		return r.handleInit(in, local, remote, handler)
	case packet.TypeCookieEcho:
		if handler == nil {
			return nil
		}
		return r.handleCookieEcho(in, local, remote, handler)
	}
	if handler == nil {
		return nil
	}
	key := serverKey{
		local:    netip.AddrPortFrom(local, in.DstPort),
		remote:   netip.AddrPortFrom(remote, in.SrcPort),
		localTag: in.VerificationTag,
	}
	a := r.assocs[key]
	if a == nil {
		return r.outOfTheBlue(in)
	}
	a.lastSeen = r.now()
	reply := r.process(key, a, in.Chunks, handler)
	if len(reply) == 0 {
		return nil
	}
	return []*packet.Packet{r.toPeer(a, reply...)}
}

// handleInit answers an INIT with an INIT ACK carrying a signed cookie, or
// with an ABORT when nothing listens on the port.
func (r *responder) handleInit(in *packet.Packet, local, remote netip.Addr, handler Handler) []*packet.Packet {
	// An INIT must be alone in its packet and carry verification tag 0.
	if len(in.Chunks) != 1 || in.VerificationTag != 0 {
		return nil
	}
	init, err := packet.ParseInit(in.Chunks[0])
	if err != nil || init.InitiateTag == 0 || init.OutboundStreams == 0 || init.InboundStreams == 0 {
		return nil // RFC 9260 3.3.2: discard an INIT with tag 0 or no streams.
	}
	reply := &packet.Packet{SrcPort: in.DstPort, DstPort: in.SrcPort, VerificationTag: init.InitiateTag}
	if handler == nil {
		reply.Chunks = []packet.Chunk{packet.Abort(false)}
		return []*packet.Packet{reply}
	}
	cookie := stateCookie{
		created:  r.now(),
		localTag: r.random(),
		peerTag:  init.InitiateTag,
		localTSN: r.random(),
		peerTSN:  init.InitialTSN,
		local:    netip.AddrPortFrom(local, in.DstPort),
		remote:   netip.AddrPortFrom(remote, in.SrcPort),
	}
	ack := packet.Init{
		InitiateTag:      cookie.localTag,
		AdvertisedWindow: advertisedWindow,
		OutboundStreams:  1,
		InboundStreams:   1,
		InitialTSN:       cookie.localTSN,
		Params:           []packet.Param{{Type: packet.ParamStateCookie, Value: cookie.encode(r.secret)}},
	}
	reply.Chunks = []packet.Chunk{ack.Chunk(packet.TypeInitAck)}
	return []*packet.Packet{reply}
}

// handleCookieEcho verifies the cookie, establishes the association (or
// finds it again when the COOKIE ACK was lost), acknowledges, and processes
// any chunks bundled after the COOKIE ECHO (kernel SCTP bundles DATA there).
func (r *responder) handleCookieEcho(in *packet.Packet, local, remote netip.Addr, handler Handler) []*packet.Packet {
	c, err := decodeCookie(in.Chunks[0].Value, r.secret, r.now())
	if err != nil {
		return nil // forged or stale: discard (no ERROR chunk, see the package doc)
	}
	key := serverKey{
		local:    netip.AddrPortFrom(local, in.DstPort),
		remote:   netip.AddrPortFrom(remote, in.SrcPort),
		localTag: c.localTag,
	}
	if in.VerificationTag != c.localTag || c.local != unmapped(key.local) || c.remote != unmapped(key.remote) {
		return nil
	}
	a := r.assocs[key]
	if a == nil {
		if len(r.assocs) >= maxServerAssociations {
			r.expire()
			if len(r.assocs) >= maxServerAssociations {
				return nil
			}
		}
		a = &serverAssoc{stateCookie: c}
		r.assocs[key] = a
	}
	a.lastSeen = r.now()
	reply := append([]packet.Chunk{packet.CookieAck()}, r.process(key, a, in.Chunks[1:], handler)...)
	return []*packet.Packet{r.toPeer(a, reply...)}
}

// process handles the chunks of a packet for an established association and
// returns the chunks to send back.
func (r *responder) process(key serverKey, a *serverAssoc, chunks []packet.Chunk, handler Handler) []packet.Chunk {
	var reply []packet.Chunk
	for _, c := range chunks {
		switch c.Type {
		case packet.TypeData:
			d, err := packet.ParseData(c)
			if err != nil || d.TSN != a.peerTSN || d.Flags&(packet.DataBegin|packet.DataEnd) != packet.DataBegin|packet.DataEnd {
				// Only one unfragmented message per association is supported.
				delete(r.assocs, key)
				return []packet.Chunk{packet.Abort(false)}
			}
			if a.answer == nil {
				a.answer = handler(d.UserData)
			}
			reply = append(reply,
				packet.Sack{CumulativeTSNAck: a.peerTSN, AdvertisedWindow: advertisedWindow}.Chunk(),
				packet.Data{Flags: packet.DataBegin | packet.DataEnd, TSN: a.localTSN, UserData: a.answer}.Chunk())
		case packet.TypeShutdown:
			reply = append(reply, packet.ShutdownAck())
		case packet.TypeShutdownComplete, packet.TypeAbort:
			delete(r.assocs, key)
			return nil
		case packet.TypeHeartbeat:
			reply = append(reply, packet.Chunk{Type: packet.TypeHeartbeatAck, Value: c.Value})
		case packet.TypeSack, packet.TypeCookieAck, packet.TypeHeartbeatAck, packet.TypeError:
		default:
			// RFC 9260 3.2: the high bit clear means stop processing the packet.
			if c.Type&0x80 == 0 {
				return reply
			}
		}
	}
	return reply
}

// outOfTheBlue answers a packet for a served port that belongs to no
// association (RFC 9260 section 8.4).
func (r *responder) outOfTheBlue(in *packet.Packet) []*packet.Packet {
	reply := &packet.Packet{SrcPort: in.DstPort, DstPort: in.SrcPort, VerificationTag: in.VerificationTag}
	for _, c := range in.Chunks {
		switch c.Type {
		case packet.TypeAbort, packet.TypeShutdownComplete, packet.TypeCookieAck, packet.TypeError:
			return nil
		case packet.TypeShutdownAck:
			reply.Chunks = []packet.Chunk{packet.ShutdownComplete(true)}
			return []*packet.Packet{reply}
		}
	}
	reply.Chunks = []packet.Chunk{packet.Abort(true)}
	return []*packet.Packet{reply}
}

// expire forgets associations not heard from for serverIdle.
func (r *responder) expire() {
	cutoff := r.now().Add(-serverIdle)
	for k, a := range r.assocs {
		if a.lastSeen.Before(cutoff) {
			delete(r.assocs, k)
		}
	}
}

func (r *responder) toPeer(a *serverAssoc, chunks ...packet.Chunk) *packet.Packet {
	return &packet.Packet{SrcPort: a.local.Port(), DstPort: a.remote.Port(), VerificationTag: a.peerTag, Chunks: chunks}
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
