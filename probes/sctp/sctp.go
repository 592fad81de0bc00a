// Package sctp gives the probe agent SCTP associations that carry one
// request and one answer, with kernel SCTP sockets where the kernel has them
// and a minimal userspace SCTP endpoint where it does not.
//
// # Why a userspace endpoint
//
// NetworkPolicy governs SCTP ports, so the harness has to probe SCTP, but
// many kernels (this project's CI machine among them) are built without SCTP
// sockets, while their conntrack and nftables still track and filter SCTP
// packets that pass through. The userspace endpoint sends and receives real
// SCTP packets over raw IP sockets (protocol 132, IPv4 and IPv6), so
// everything between the two probe processes (veths, routers, conntrack,
// nftables `sctp dport` rules, a policy enforcer) sees exactly what it would
// see between two kernel SCTP stacks.
//
// # What goes on the wire
//
// Client: INIT -> (INIT ACK) -> COOKIE ECHO -> (COOKIE ACK) -> one DATA chunk
// with the request -> (SACK + DATA with the answer) -> SHUTDOWN ->
// (SHUTDOWN ACK) -> SHUTDOWN COMPLETE. Every packet has a correct common
// header and CRC32c checksum, verification tags follow RFC 9260 section 8.5,
// INIT, INIT ACK and SHUTDOWN COMPLETE travel alone and COOKIE ECHO/ACK
// first in their packets, as Linux conntrack requires. The server is
// stateless until the COOKIE ECHO: its state travels in an HMAC-SHA256
// signed cookie (per-process random key, 60 s lifetime). An INIT for a port
// no process in the network namespace serves is answered with an ABORT, as a
// kernel SCTP stack does, and the client reports that as refused; so are
// ICMP destination unreachable errors (IP_RECVERR on the raw socket).
//
// # Demultiplexing
//
// Each stack has one raw socket per address family. Every raw socket in a
// network namespace receives every SCTP packet, so several probe processes
// in one namespace (one per container of a pod) coexist by rules: a client
// association owns its local port, reserved by binding a UDP socket to an
// ephemeral port so no other process of this family picks the same number;
// a served port is claimed by binding an abstract Unix socket named after it
// (see marker.go); a process answers only packets for its own client ports
// and served ports, plus INITs for ports nobody claims.
//
// # Limits
//
// One unfragmented message each way per association, on stream 0; no
// multi-homing (no address parameters are sent and those received are
// ignored), no path MTU discovery, no congestion control, no ERROR chunks
// (a stale or forged cookie is discarded silently), no HEARTBEATs sent
// (received ones are answered). Retransmission starts at 200 ms, doubles up
// to 800 ms and is driven by the client only; the server answers duplicates
// again. Link-local IPv6 destinations are not supported (no zone). The
// server side is meant for probes, not for general SCTP traffic. Userspace
// mode on a kernel that has SCTP is for tests only: the kernel's own stack
// sees the same packets and aborts associations it does not know. The
// kernel-socket path cannot be exercised on a kernel without SCTP, so the
// integration tests cover the userspace endpoint only.
package sctp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/probes/sourceport"
)

// Mode selects the SCTP implementation of a Stack.
type Mode string

// The implementations a Stack can use.
const (
	// Auto uses kernel sockets when the kernel has SCTP, userspace otherwise.
	Auto Mode = "auto"
	// Kernel uses kernel SCTP sockets and fails where there are none.
	Kernel Mode = "kernel"
	// Userspace uses the raw-socket endpoint even where the kernel has SCTP.
	Userspace Mode = "userspace"
)

// Stack opens SCTP associations and serves SCTP ports in the network
// namespace of the thread that created it.
type Stack struct {
	kernel bool
	ns     *netns.Thread
	ports  *sourceport.Chooser // the userspace client associations' local ports

	mu        sync.Mutex
	endpoints map[int]*endpoint
}

// NewStack returns a stack for the calling thread's network namespace.
func NewStack(mode Mode) (*Stack, error) {
	s := &Stack{endpoints: map[int]*endpoint{}, ports: sourceport.New()}
	switch mode {
	case Auto, "":
		s.kernel = kernelSupported()
	case Kernel:
		if !kernelSupported() {
			return nil, errors.New("the kernel has no SCTP sockets")
		}
		s.kernel = true
	case Userspace:
	default:
		return nil, fmt.Errorf("unknown SCTP mode %q (want auto, kernel or userspace)", mode)
	}
	ns, err := netns.NewThread(netns.Current)
	if err != nil {
		return nil, err
	}
	s.ns = ns
	return s, nil
}

// Kernel reports whether the stack uses kernel SCTP sockets.
func (s *Stack) Kernel() bool { return s.kernel }

// Exchange opens an association to remote, sends request as one message and
// returns the one message answered. Errors wrap ErrRefused when the peer or
// a router refused, and wrap ctx's error when ctx ended first (a
// *StalledError for the userspace endpoint).
func (s *Stack) Exchange(ctx context.Context, remote netip.AddrPort, request []byte) ([]byte, error) {
	if s.kernel {
		return s.kernelExchange(ctx, remote, request)
	}
	family, _ := sockaddr(remote)
	e, err := s.endpoint(family)
	if err != nil {
		return nil, err
	}
	return e.exchange(ctx, remote, request)
}

// Listen serves port on IPv4 and IPv6 (where available), answering each
// association's request with handler. Close the returned Closer to stop.
func (s *Stack) Listen(port uint16, handler Handler) (io.Closer, error) {
	if s.kernel {
		return s.kernelListen(port, handler)
	}
	var marker *portMarker
	var err error
	s.ns.Run(func() { marker, err = claimPort(port) })
	if err != nil {
		return nil, err
	}
	l := &userspaceListener{port: port, marker: marker}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		e, err := s.endpoint(family)
		if err != nil {
			if family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue
			}
			l.Close()
			return nil, fmt.Errorf("serving SCTP port %d: %w", port, err)
		}
		e.serve(port, handler)
		l.endpoints = append(l.endpoints, e)
	}
	return l, nil
}

// Close closes the stack's raw sockets after the associations still
// shutting down have finished (at most about a second).
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for family, e := range s.endpoints {
		errs = append(errs, e.close())
		delete(s.endpoints, family)
	}
	s.ns.Stop()
	return errors.Join(errs...)
}

func (s *Stack) endpoint(family int) (*endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.endpoints[family]; ok {
		return e, nil
	}
	e, err := newEndpoint(s.ns, family, s.ports)
	if err != nil {
		return nil, err
	}
	s.endpoints[family] = e
	return e, nil
}

// userspaceListener is a served port on the userspace endpoints.
type userspaceListener struct {
	port      uint16
	marker    *portMarker
	endpoints []*endpoint
}

// Close stops answering on the port and releases its claim.
func (l *userspaceListener) Close() error {
	for _, e := range l.endpoints {
		e.unserve(l.port)
	}
	return l.marker.release()
}
