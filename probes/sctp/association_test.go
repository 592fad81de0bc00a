package sctp

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/probes/sctp/packet"
)

var (
	clientAddr = netip.MustParseAddr("10.99.1.2")
	serverAddr = netip.MustParseAddr("10.99.2.2")
)

// harness connects a client association and a responder in memory. Every
// packet goes through Marshal and Parse, so checksums and lengths are
// exercised, and is checked against the rules Linux conntrack enforces.
type harness struct {
	t       *testing.T
	client  *association
	server  *responder
	clock   time.Time
	calls   int // handler invocations
	handler Handler
	trace   []string
}

func newHarness(t *testing.T, serve bool) *harness {
	h := &harness{t: t, clock: time.Unix(1_700_000_000, 0)}
	next := uint32(1000)
	h.server = newResponder([]byte("test secret"), func() uint32 { next++; return next }, func() time.Time { return h.clock })
	if serve {
		h.handler = func(req []byte) []byte {
			h.calls++
			return append([]byte("answer to "), req...)
		}
	}
	h.client = newAssociation(40000, 80, 0xc0ffee, 500, []byte("request"))
	return h
}

// wire marshals, parses and checks a packet as it would cross the network.
func (h *harness) wire(p *packet.Packet) *packet.Packet {
	h.t.Helper()
	got, err := packet.Parse(p.Marshal())
	if err != nil {
		h.t.Fatalf("packet does not survive the wire: %v", err)
	}
	for i, c := range got.Chunks {
		switch c.Type {
		case packet.TypeInit, packet.TypeInitAck, packet.TypeShutdownComplete:
			if len(got.Chunks) != 1 {
				h.t.Errorf("%s bundled with other chunks: %v", c.Type, chunkTypes(got))
			}
		case packet.TypeCookieEcho, packet.TypeCookieAck:
			if i != 0 {
				h.t.Errorf("%s is not the first chunk: %v", c.Type, chunkTypes(got))
			}
		}
	}
	if got.Chunks[0].Type == packet.TypeInit && got.VerificationTag != 0 {
		h.t.Errorf("INIT with verification tag %#x", got.VerificationTag)
	}
	return got
}

// toServer delivers client packets and returns the server's replies.
func (h *harness) toServer(pkts ...*packet.Packet) []*packet.Packet {
	var out []*packet.Packet
	for _, p := range pkts {
		p = h.wire(p)
		h.trace = append(h.trace, "C>"+chunkTypes(p))
		out = append(out, h.server.handle(p, serverAddr, clientAddr, h.handler)...)
	}
	return out
}

// toClient delivers server packets and returns the client's replies.
func (h *harness) toClient(pkts ...*packet.Packet) []*packet.Packet {
	var out []*packet.Packet
	for _, p := range pkts {
		p = h.wire(p)
		h.trace = append(h.trace, "S>"+chunkTypes(p))
		out = append(out, h.client.receive(p)...)
	}
	return out
}

// run ping-pongs until nobody has anything to send.
func (h *harness) run(pkts ...*packet.Packet) {
	for len(pkts) > 0 {
		pkts = h.toClient(h.toServer(pkts...)...)
	}
}

func chunkTypes(p *packet.Packet) string {
	s := ""
	for i, c := range p.Chunks {
		if i > 0 {
			s += "+"
		}
		s += c.Type.String()
	}
	return s
}

func TestAssociationHappyPath(t *testing.T) {
	h := newHarness(t, true)
	h.run(h.client.start())
	want := []string{
		"C>INIT", "S>INIT-ACK", "C>COOKIE-ECHO", "S>COOKIE-ACK", "C>DATA", "S>SACK+DATA",
		"C>SHUTDOWN", "S>SHUTDOWN-ACK", "C>SHUTDOWN-COMPLETE",
	}
	if got := h.trace; !slices.Equal(got, want) {
		t.Errorf("exchange:\n got %v\nwant %v", got, want)
	}
	if string(h.client.answer) != "answer to request" {
		t.Errorf("answer = %q", h.client.answer)
	}
	if h.client.state != closed || h.client.abortedBy != "" {
		t.Errorf("client state %s, aborted %q", h.client.state, h.client.abortedBy)
	}
	if len(h.server.assocs) != 0 {
		t.Errorf("server kept %d associations after SHUTDOWN COMPLETE", len(h.server.assocs))
	}
}

func TestAssociationRefusedWhenNothingListens(t *testing.T) {
	h := newHarness(t, false)
	h.run(h.client.start())
	if got, want := h.trace, []string{"C>INIT", "S>ABORT"}; !slices.Equal(got, want) {
		t.Errorf("exchange = %v, want %v", got, want)
	}
	if h.client.abortedBy == "" || h.client.state != closed || h.client.answer != nil {
		t.Errorf("client not refused: state %s, aborted %q", h.client.state, h.client.abortedBy)
	}
}

func TestAssociationRecoversFromLoss(t *testing.T) {
	h := newHarness(t, true)
	h.toServer(h.client.start()) // the INIT ACK is lost
	if h.client.state != cookieWait {
		t.Fatalf("state %s after a lost INIT ACK", h.client.state)
	}
	echo := h.toClient(h.toServer(h.client.retransmit()...)...) // INIT again -> COOKIE ECHO
	h.toServer(echo...)                                         // the COOKIE ACK is lost
	ack := h.toServer(h.client.retransmit()...)                 // COOKIE ECHO again: same association
	if len(h.server.assocs) != 1 {
		t.Fatalf("server has %d associations after a repeated COOKIE ECHO, want 1", len(h.server.assocs))
	}
	data := h.toClient(ack...)
	h.toServer(data...) // the answer is lost
	answer := h.toServer(h.client.retransmit()...)
	if h.calls != 1 {
		t.Errorf("handler ran %d times for one request retransmitted, want 1", h.calls)
	}
	shutdown := h.toClient(answer...)
	h.toServer(shutdown...) // the SHUTDOWN ACK is lost
	h.run(h.client.retransmit()...)
	if h.client.state != closed || string(h.client.answer) != "answer to request" {
		t.Errorf("client ended in %s with answer %q", h.client.state, h.client.answer)
	}
	if len(h.server.assocs) != 0 {
		t.Errorf("server kept %d associations", len(h.server.assocs))
	}
}

func TestResponderRejectsBadCookies(t *testing.T) {
	h := newHarness(t, true)
	ack := h.toServer(h.client.start())
	echo := h.toClient(ack...)[0]

	forged := *echo
	forged.Chunks = []packet.Chunk{packet.CookieEcho(bytes.Clone(echo.Chunks[0].Value))}
	forged.Chunks[0].Value[20] ^= 0xff
	if out := h.toServer(&forged); len(out) != 0 {
		t.Errorf("forged cookie answered with %v", chunkTypes(out[0]))
	}
	// The right cookie from another address is not accepted either.
	if out := h.server.handle(h.wire(echo), serverAddr, netip.MustParseAddr("10.99.3.2"), h.handler); len(out) != 0 {
		t.Error("cookie accepted from another address")
	}
	h.clock = h.clock.Add(cookieLifetime + time.Second)
	if out := h.toServer(echo); len(out) != 0 {
		t.Error("stale cookie accepted")
	}
	if len(h.server.assocs) != 0 {
		t.Errorf("server created %d associations from bad cookies", len(h.server.assocs))
	}
}

func TestResponderOutOfTheBlue(t *testing.T) {
	h := newHarness(t, true)
	data := &packet.Packet{SrcPort: 40000, DstPort: 80, VerificationTag: 0x1234,
		Chunks: []packet.Chunk{packet.Data{Flags: packet.DataBegin | packet.DataEnd, TSN: 1, UserData: []byte("x")}.Chunk()}}
	out := h.toServer(data)
	if len(out) != 1 || out[0].Chunks[0].Type != packet.TypeAbort || out[0].Chunks[0].Flags != packet.FlagT || out[0].VerificationTag != 0x1234 {
		t.Fatalf("OOTB DATA answered with %+v, want ABORT with the T bit and the reflected tag", out)
	}
	shutdownAck := &packet.Packet{SrcPort: 40000, DstPort: 80, VerificationTag: 0x99, Chunks: []packet.Chunk{packet.ShutdownAck()}}
	out = h.toServer(shutdownAck)
	if len(out) != 1 || out[0].Chunks[0].Type != packet.TypeShutdownComplete || out[0].Chunks[0].Flags != packet.FlagT {
		t.Errorf("OOTB SHUTDOWN ACK answered with %+v, want SHUTDOWN COMPLETE with the T bit", out)
	}
	abort := &packet.Packet{SrcPort: 40000, DstPort: 80, VerificationTag: 0x99, Chunks: []packet.Chunk{packet.Abort(false)}}
	if out := h.toServer(abort); len(out) != 0 {
		t.Error("OOTB ABORT was answered")
	}
}

// Kernel SCTP bundles the first DATA chunk after the COOKIE ECHO.
func TestResponderHandlesDataBundledWithCookieEcho(t *testing.T) {
	h := newHarness(t, true)
	echo := h.toClient(h.toServer(h.client.start())...)[0]
	echo.Chunks = append(echo.Chunks, h.client.requestChunk())
	out := h.toServer(echo)
	if len(out) != 1 || chunkTypes(out[0]) != "COOKIE-ACK+SACK+DATA" {
		t.Fatalf("reply = %v, want COOKIE-ACK+SACK+DATA", out)
	}
}

func TestClientIgnoresForeignPackets(t *testing.T) {
	h := newHarness(t, true)
	ack := h.toServer(h.client.start())[0]
	wrongTag := *ack
	wrongTag.VerificationTag++
	wrongPort := *ack
	wrongPort.SrcPort = 81
	for _, p := range []*packet.Packet{&wrongTag, &wrongPort} {
		if out := h.toClient(p); len(out) != 0 || h.client.state != cookieWait {
			t.Errorf("client reacted to a foreign packet (tag %#x, port %d)", p.VerificationTag, p.SrcPort)
		}
	}
	// An ABORT with someone else's tag does not kill the association.
	abort := &packet.Packet{SrcPort: 80, DstPort: 40000, VerificationTag: 7, Chunks: []packet.Chunk{packet.Abort(false)}}
	h.toClient(abort)
	if h.client.state != cookieWait {
		t.Errorf("foreign ABORT closed the association")
	}
}

func TestClientAbortOnTimeout(t *testing.T) {
	h := newHarness(t, true)
	if h.client.abort() != nil {
		t.Error("abort before the peer's tag is known returned a packet")
	}
	h.toClient(h.toServer(h.client.start())...)
	abort := h.client.abort()
	if abort == nil || abort.VerificationTag != h.client.peerTag || abort.Chunks[0].Flags != 0 {
		t.Fatalf("abort = %+v", abort)
	}
}
