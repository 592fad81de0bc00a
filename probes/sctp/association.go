package sctp

import (
	"fmt"

	"github.com/netpolcheck/netpolcheck/probes/sctp/packet"
)

// clientState is where a client association is in its life.
type clientState int

const (
	cookieWait   clientState = iota // INIT sent
	cookieEchoed                    // COOKIE ECHO sent
	established                     // COOKIE ACK received, request sent
	shutdownSent                    // answer received, SHUTDOWN sent
	closed                          // SHUTDOWN COMPLETE sent, or aborted
)

func (s clientState) String() string {
	return [...]string{"COOKIE-WAIT", "COOKIE-ECHOED", "ESTABLISHED", "SHUTDOWN-SENT", "CLOSED"}[s]
}

// association is the client side of one probe: INIT, COOKIE ECHO, one DATA
// chunk with the request, the peer's DATA chunk with the answer, then a
// graceful shutdown. It does no I/O and keeps no timers: the caller sends
// what start, receive and retransmit return, and calls retransmit when its
// retransmission timer fires.
type association struct {
	localPort, peerPort uint16
	localTag, peerTag   uint32
	localTSN, peerTSN   uint32
	cookie              []byte
	request             []byte

	state     clientState
	acked     bool   // the peer acknowledged the request
	answer    []byte // the peer's answer, once received
	abortedBy string // why the peer aborted, when it did
}

func newAssociation(localPort, peerPort uint16, localTag, localTSN uint32, request []byte) *association {
	return &association{localPort: localPort, peerPort: peerPort, localTag: localTag, localTSN: localTSN, request: request}
}

// start returns the INIT.
func (a *association) start() *packet.Packet {
	return a.retransmit()[0]
}

// retransmit returns the packets to send again because the peer has not
// answered the last ones in time.
func (a *association) retransmit() []*packet.Packet {
	switch a.state {
	case cookieWait:
		init := packet.Init{InitiateTag: a.localTag, AdvertisedWindow: advertisedWindow, OutboundStreams: 1, InboundStreams: 1, InitialTSN: a.localTSN}
		return []*packet.Packet{{SrcPort: a.localPort, DstPort: a.peerPort, Chunks: []packet.Chunk{init.Chunk(packet.TypeInit)}}}
	case cookieEchoed:
		return []*packet.Packet{a.toPeer(packet.CookieEcho(a.cookie))}
	case established:
		return []*packet.Packet{a.toPeer(a.requestChunk())}
	case shutdownSent:
		return []*packet.Packet{a.toPeer(packet.Shutdown(a.peerTSN))}
	}
	return nil
}

// receive processes a packet from the peer and returns the packets to send.
// Packets that do not belong to this association are ignored.
func (a *association) receive(in *packet.Packet) []*packet.Packet {
	if in.SrcPort != a.peerPort || in.DstPort != a.localPort || a.state == closed {
		return nil
	}
	if abort, ok := findChunk(in, packet.TypeAbort); ok {
		// T bit clear: the peer used our tag; set: it reflected its own.
		if (abort.Flags&packet.FlagT == 0 && in.VerificationTag == a.localTag) ||
			(abort.Flags&packet.FlagT != 0 && a.peerTag != 0 && in.VerificationTag == a.peerTag) {
			a.abortedBy = fmt.Sprintf("ABORT from the peer in state %s", a.state)
			a.state = closed
		}
		return nil
	}
	if in.VerificationTag != a.localTag {
		return nil
	}
	var out []packet.Chunk
	for _, c := range in.Chunks {
		switch {
		case c.Type == packet.TypeInitAck && a.state == cookieWait:
			ack, err := packet.ParseInit(c)
			cookie, ok := ack.Param(packet.ParamStateCookie)
			if err != nil || !ok || ack.InitiateTag == 0 {
				return nil
			}
			a.peerTag, a.peerTSN, a.cookie = ack.InitiateTag, ack.InitialTSN, append([]byte(nil), cookie...)
			a.state = cookieEchoed
			out = append(out, packet.CookieEcho(a.cookie))
		case c.Type == packet.TypeCookieAck && a.state == cookieEchoed:
			a.state = established
			out = append(out, a.requestChunk())
		case c.Type == packet.TypeSack && a.state >= established:
			if s, err := packet.ParseSack(c); err == nil && s.CumulativeTSNAck == a.localTSN {
				a.acked = true
			}
		case c.Type == packet.TypeData && a.state >= established:
			d, err := packet.ParseData(c)
			if err != nil || d.TSN != a.peerTSN {
				continue
			}
			if a.answer == nil {
				a.answer = append([]byte(nil), d.UserData...)
			}
			if a.state == shutdownSent {
				out = append(out, packet.Shutdown(a.peerTSN)) // our SHUTDOWN acknowledges it
			} else {
				out = append(out, packet.Sack{CumulativeTSNAck: a.peerTSN, AdvertisedWindow: advertisedWindow}.Chunk())
			}
		case c.Type == packet.TypeHeartbeat:
			out = append(out, packet.Chunk{Type: packet.TypeHeartbeatAck, Value: c.Value})
		case c.Type == packet.TypeShutdownAck && a.state == shutdownSent:
			a.state = closed
			return []*packet.Packet{{SrcPort: a.localPort, DstPort: a.peerPort, VerificationTag: a.peerTag,
				Chunks: []packet.Chunk{packet.ShutdownComplete(false)}}}
		}
	}
	// Shut down once the answer is in and the request acknowledged. The
	// SHUTDOWN's cumulative TSN ack replaces a separate SACK.
	if a.state == established && a.answer != nil && a.acked {
		a.state = shutdownSent
		out = withoutType(out, packet.TypeSack)
		out = append(out, packet.Shutdown(a.peerTSN))
	}
	if len(out) == 0 {
		return nil
	}
	return []*packet.Packet{a.toPeer(out...)}
}

// abort returns the ABORT that tears the association down, or nil when the
// peer's tag is not known yet (nothing to abort).
func (a *association) abort() *packet.Packet {
	if a.peerTag == 0 || a.state == closed {
		return nil
	}
	a.state = closed
	return a.toPeer(packet.Abort(false))
}

func (a *association) requestChunk() packet.Chunk {
	return packet.Data{Flags: packet.DataBegin | packet.DataEnd, TSN: a.localTSN, UserData: a.request}.Chunk()
}

func (a *association) toPeer(chunks ...packet.Chunk) *packet.Packet {
	return &packet.Packet{SrcPort: a.localPort, DstPort: a.peerPort, VerificationTag: a.peerTag, Chunks: chunks}
}

func findChunk(p *packet.Packet, t packet.ChunkType) (packet.Chunk, bool) {
	for _, c := range p.Chunks {
		if c.Type == t {
			return c, true
		}
	}
	return packet.Chunk{}, false
}

func withoutType(chunks []packet.Chunk, t packet.ChunkType) []packet.Chunk {
	out := chunks[:0]
	for _, c := range chunks {
		if c.Type != t {
			out = append(out, c)
		}
	}
	return out
}
