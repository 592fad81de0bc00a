package sctp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/internal/netns"

	"github.com/netpolcheck/netpolcheck/probes/sctp/packet"
	"github.com/netpolcheck/netpolcheck/probes/sourceport"
)

const (
	// initialRTO is the first retransmission timeout. RFC 9260's RTO.Initial
	// is 1 s; probes between namespaces of one machine need far less, and a
	// 1 s probe timeout would otherwise allow no retransmission at all.
	initialRTO = 200 * time.Millisecond
	maxRTO     = 800 * time.Millisecond
	// shutdownGrace bounds the graceful shutdown after the answer arrived;
	// an association not closed by then is aborted.
	shutdownGrace = time.Second
	// maxPacket bounds what the raw socket reads at once.
	maxPacket = 65536
)

// endpoint is the userspace SCTP stack of one address family in one network
// namespace: one raw socket, a demultiplexer that hands packets to client
// associations (by local port) or to the responder (by served port), and
// the background shutdowns still in progress.
type endpoint struct {
	sock   *rawSocket
	family int
	ns     *netns.Thread
	ports  *sourceport.Chooser // client associations' local ports

	mu       sync.Mutex
	resp     *responder
	clients  map[uint16]*client
	handlers map[uint16]Handler

	done   chan struct{}
	loops  sync.WaitGroup // the demultiplexer and the expiry loop
	assocs sync.WaitGroup // client associations, until closed
}

// client is a client association's mailbox in the demultiplexer.
type client struct {
	remote netip.AddrPort
	in     chan inbound
}

// newEndpoint opens the raw socket of family in ns's network namespace and
// starts the demultiplexer; client associations take their local ports from
// ports.
func newEndpoint(ns *netns.Thread, family int, ports *sourceport.Chooser) (*endpoint, error) {
	var sock *rawSocket
	var err error
	ns.Run(func() { sock, err = openRawSocket(family) })
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails on Linux.
	e := &endpoint{
		sock:     sock,
		family:   family,
		ns:       ns,
		ports:    ports,
		resp:     newResponder(secret, randomTag, time.Now),
		clients:  map[uint16]*client{},
		handlers: map[uint16]Handler{},
		done:     make(chan struct{}),
	}
	e.loops.Add(2)
	go e.readLoop()
	go e.expireLoop()
	return e, nil
}

// close waits for the client associations to finish their shutdowns (at
// most shutdownGrace after their answers), then stops the demultiplexer.
func (e *endpoint) close() error {
	e.assocs.Wait()
	close(e.done)
	err := e.sock.close()
	e.loops.Wait()
	return err
}

func (e *endpoint) readLoop() {
	defer e.loops.Done()
	buf := make([]byte, maxPacket)
	for {
		r, err := e.sock.receive(buf)
		if err != nil {
			select {
			case <-e.done:
				return
			default:
				continue // errSkip, or a transient read error
			}
		}
		e.dispatch(r)
	}
}

func (e *endpoint) expireLoop() {
	defer e.loops.Done()
	tick := time.NewTicker(serverIdle / 4)
	defer tick.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-tick.C:
			e.mu.Lock()
			e.resp.expire()
			e.mu.Unlock()
		}
	}
}

// dispatch routes one received packet or ICMP error.
func (e *endpoint) dispatch(r received) {
	local, remote := r.local.Unmap(), r.remote.Unmap()
	if r.icmpErr != nil {
		src, dst, _, ok := packet.Ports(r.payload)
		if !ok {
			return
		}
		if c := e.client(src); c != nil && c.remote == netip.AddrPortFrom(remote, dst) {
			c.deliver(inbound{icmpErr: r.icmpErr})
		}
		return
	}
	// The read buffer is reused: parse a copy, since chunks alias it.
	p, err := packet.Parse(bytes.Clone(r.payload))
	if err != nil {
		return
	}
	if c := e.client(p.DstPort); c != nil && c.remote == netip.AddrPortFrom(remote, p.SrcPort) {
		c.deliver(inbound{pkt: p})
		return
	}
	e.mu.Lock()
	handler := e.handlers[p.DstPort]
	e.mu.Unlock()
	if handler == nil {
		// Packets other than INIT for ports nobody here serves may belong to
		// another process's client association: leave them alone. An INIT
		// for a port another process serves is that process's to answer.
		if p.Chunks[0].Type != packet.TypeInit || e.portClaimed(p.DstPort) {
			return
		}
	}
	e.mu.Lock()
	out := e.resp.handle(p, local, remote, handler)
	e.mu.Unlock()
	for _, o := range out {
		// A lost reply is sent again when the client retransmits.
		_ = e.sock.send(o.Marshal(), local, remote)
	}
}

// inbound is what the demultiplexer hands a client association: a packet
// from its peer, or an ICMP error about a packet it sent.
type inbound struct {
	pkt     *packet.Packet
	icmpErr error
}

// deliver queues without blocking the demultiplexer; a full mailbox drops,
// like a full socket buffer, and retransmission recovers.
func (c *client) deliver(in inbound) {
	select {
	case c.in <- in:
	default:
	}
}

func (e *endpoint) portClaimed(port uint16) bool {
	var claimed bool
	e.ns.Run(func() { claimed = portClaimed(port) })
	return claimed
}

func (e *endpoint) client(port uint16) *client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clients[port]
}

// serve routes INITs and association packets for port to handler.
func (e *endpoint) serve(port uint16, handler Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[port] = handler
}

// unserve stops answering on port; its INITs are then refused.
func (e *endpoint) unserve(port uint16) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.handlers, port)
}

// exchange runs one client association to remote: handshake, request,
// answer. It returns as soon as the answer is in (or the association was
// refused, or ctx ended); the graceful shutdown goes on in the background
// and close waits for it.
func (e *endpoint) exchange(ctx context.Context, remote netip.AddrPort, request []byte) ([]byte, error) {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	var port uint16
	var release func()
	var err error
	e.ns.Run(func() { port, release, err = reservePort(e.family, remote, e.ports) })
	if err != nil {
		return nil, err
	}
	c := &client{remote: remote, in: make(chan inbound, 16)}
	e.mu.Lock()
	e.clients[port] = c
	e.mu.Unlock()

	a := newAssociation(port, remote.Port(), randomTag(), randomTag(), request)
	results := make(chan exchangeResult, 1)
	e.assocs.Add(1)
	go func() {
		defer e.assocs.Done()
		defer release()
		defer func() {
			e.mu.Lock()
			delete(e.clients, port)
			e.mu.Unlock()
		}()
		e.drive(ctx, a, c, results)
	}()
	r := <-results
	return r.answer, r.err
}

type exchangeResult struct {
	answer []byte
	err    error
}

// StalledError is the error of an association whose context ended before
// the answer came: where the handshake stood and how many packets went each
// way, so that a timeout says whether the peer never answered, or answered
// the INIT and then fell silent. It wraps the context's error.
type StalledError struct {
	State    string // the client association's state (COOKIE-WAIT: no INIT ACK yet)
	Sent     int    // packets sent to the peer, retransmissions included
	Received int    // packets received from the peer
	Err      error  // the context's error
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("SCTP association stalled in %s (%d packets sent, %d received): %v", e.State, e.Sent, e.Received, e.Err)
}

func (e *StalledError) Unwrap() error { return e.Err }

// drive runs the association's timers and I/O until it is closed. It sends
// exactly one result: the answer, a refusal, or a *StalledError wrapping
// ctx's error.
func (e *endpoint) drive(ctx context.Context, a *association, c *client, results chan<- exchangeResult) {
	var sent, received int
	send := func(pkts ...*packet.Packet) {
		for _, p := range pkts {
			if p != nil {
				sent++
				_ = e.sock.send(p.Marshal(), netip.Addr{}, c.remote.Addr()) // retransmitted on timeout
			}
		}
	}
	reported := false
	report := func(r exchangeResult) {
		if !reported {
			reported = true
			results <- r
		}
	}
	defer report(exchangeResult{err: errors.New("association closed without an answer")})

	rto := initialRTO
	retransmit := time.NewTimer(rto)
	defer retransmit.Stop()
	var grace <-chan time.Time // armed once the answer is in
	done := ctx.Done()
	if err := e.sock.send(a.start().Marshal(), netip.Addr{}, c.remote.Addr()); err != nil {
		report(exchangeResult{err: err})
		return
	}
	sent++
	for a.state != closed {
		select {
		case <-done:
			stalled := &StalledError{State: a.state.String(), Sent: sent, Received: received, Err: ctx.Err()}
			send(a.abort())
			report(exchangeResult{err: stalled})
			return
		case <-grace:
			send(a.abort())
			return
		case <-retransmit.C:
			send(a.retransmit()...)
			rto = min(2*rto, maxRTO)
			retransmit.Reset(rto)
		case in := <-c.in:
			if in.icmpErr != nil {
				if a.answer == nil {
					a.state = closed
					report(exchangeResult{err: fmt.Errorf("%w: %w", ErrRefused, in.icmpErr)})
				}
				continue
			}
			received++
			send(a.receive(in.pkt)...)
			if a.abortedBy != "" && a.answer == nil {
				report(exchangeResult{err: fmt.Errorf("%w: %s", ErrRefused, a.abortedBy)})
			}
			if a.answer != nil && grace == nil {
				report(exchangeResult{answer: a.answer})
				done = nil // the probe is answered; only the shutdown is left
				grace = time.After(shutdownGrace)
			}
		}
	}
}

// ErrRefused is wrapped by errors for associations the peer (or a router)
// refused: an ABORT, or an ICMP destination unreachable.
var ErrRefused = errors.New("SCTP association refused")

// reservePort picks a local port for a client association to remote, the
// one ports chooses (see package sourceport for why not a random one), and
// reserves it by binding a UDP socket to it: the kernel then hands that
// number to no other socket of this family, so concurrent probe processes
// in one network namespace never pick the same SCTP port.
func reservePort(family int, remote netip.AddrPort, ports *sourceport.Chooser) (uint16, func(), error) {
	network, host := "udp4", "0.0.0.0"
	if family == unix.AF_INET6 {
		network, host = "udp6", "::"
	}
	conn, err := sourceport.Bind(ports, sourceport.Key{Protocol: "SCTP", Dest: remote}, func(port int) (net.PacketConn, error) {
		return net.ListenPacket(network, net.JoinHostPort(host, strconv.Itoa(port)))
	})
	if err != nil {
		return 0, nil, fmt.Errorf("reserving a local port for SCTP: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	return uint16(port), func() { conn.Close() }, nil
}

// randomTag returns a random non-zero 32-bit value for verification tags
// and initial TSNs.
func randomTag() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
		if v := binary.BigEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}
