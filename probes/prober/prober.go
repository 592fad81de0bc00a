// Package prober runs one probe (matrix.Probe) over TCP, UDP, SCTP or ICMP
// echo and classifies what happened as a matrix.Result: connected (the
// expected endpoint answered), wrong-peer (another one did), refused (a
// reset, ABORT or ICMP unreachable), timeout (silence), or error (the probe
// could not be run). A DNS probe only resolves its host: connected with the
// address as the peer, timeout when no DNS server answers, error when the
// name does not exist. `netpolcheck-probe connect` and `batch` both use it.
package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/sourceport"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// Retransmission schedule of the datagram probes (UDP, ICMP): the request is
// sent again after 200 ms, 400 ms, 800 ms, ... until the probe times out, so
// one lost datagram does not turn into a timeout.
const (
	initialRetransmit = 200 * time.Millisecond
	maxRetransmit     = 800 * time.Millisecond
)

// Prober runs probes. TCP, UDP and ICMP sockets are opened in the calling
// thread's network namespace; the SCTP stack (one raw socket per address
// family in userspace mode) is shared by all probes and bound to the
// namespace of the first SCTP probe's thread. In the probe agent all threads
// share one namespace, so this is simply "where the agent runs". It is safe
// for concurrent use.
//
// ICMP echo carries no identity: its result is connected when the target
// address answers, with that address as the peer, and Expect is not checked.
type Prober struct {
	sctpMode sctp.Mode
	udpPorts *sourceport.Chooser
	// Resolver resolves DNS names; nil uses the system's resolver.
	Resolver *Resolver

	sctpOnce  sync.Once
	sctpStack *sctp.Stack
	sctpErr   error
}

// New returns a prober using SCTP implementation mode for SCTP probes.
func New(mode sctp.Mode) *Prober {
	return &Prober{sctpMode: mode, udpPorts: sourceport.New()}
}

// Close releases the SCTP stack, waiting for associations still shutting
// down (about a second at most).
func (p *Prober) Close() error {
	if p.sctpStack != nil {
		return p.sctpStack.Close()
	}
	return nil
}

// Run performs one probe within its timeout and reports the outcome. It
// never fails: problems are results with outcome Error.
func (p *Prober) Run(ctx context.Context, probe matrix.Probe) matrix.Result {
	start := time.Now()
	result := func(o matrix.Outcome, peer, detail string) matrix.Result {
		return matrix.Result{ID: probe.ID, Outcome: o, Peer: peer, Detail: detail, LatencyMicros: time.Since(start).Microseconds()}
	}
	if probe.TimeoutMillis <= 0 {
		return result(matrix.Error, "", "probe has no timeout")
	}
	ctx, cancel := context.WithTimeout(ctx, probe.Timeout())
	defer cancel()

	addr, err := p.resolve(ctx, probe.Host)
	if err != nil {
		o, detail := classify(err)
		return result(o, "", detail)
	}
	if probe.Protocol == matrix.ProtocolDNS {
		return result(matrix.Connected, addr.String(), "")
	}
	if probe.Protocol == matrix.ProtocolICMP {
		peer, err := p.echo(ctx, addr)
		if err != nil {
			o, detail := classify(err)
			return result(o, "", detail)
		}
		return result(matrix.Connected, peer, "")
	}
	if probe.Port < 1 || probe.Port > 65535 {
		return result(matrix.Error, "", fmt.Sprintf("port %d out of range", probe.Port))
	}
	dest := netip.AddrPortFrom(addr, uint16(probe.Port))
	req := wire.NewRequest()
	var answer []byte
	switch probe.Protocol {
	case corev1.ProtocolTCP:
		answer, err = exchangeTCP(ctx, dest, req)
	case corev1.ProtocolUDP:
		answer, err = exchangeUDP(ctx, dest, req, p.udpPorts)
	case corev1.ProtocolSCTP:
		answer, err = p.exchangeSCTP(ctx, dest, req)
	default:
		return result(matrix.Error, "", fmt.Sprintf("unknown protocol %q", probe.Protocol))
	}
	var wrongSource *wrongSourceError
	if errors.As(err, &wrongSource) {
		return result(matrix.WrongPeer, wrongSource.peer, wrongSource.Error())
	}
	if err != nil {
		o, detail := classify(err)
		return result(o, "", detail)
	}
	a, err := wire.ParseAnswer(answer, req)
	if err != nil {
		return result(matrix.WrongPeer, a.Peer(), err.Error())
	}
	if !a.Matches(probe.Expect) {
		return result(matrix.WrongPeer, a.Peer(), fmt.Sprintf("answered by %s, expected %s", a.Identity, probe.Expect))
	}
	return result(matrix.Connected, a.Peer(), "")
}

// Listening probes every port on host, one after the other (a server that
// listens answers at once, a port nobody serves refuses at once), each
// within timeout, and returns nil when all of them answer (with any
// identity), or an error naming those that do not. It is `netpolcheck-probe
// ready`: host is the pod's loopback.
func (p *Prober) Listening(ctx context.Context, host string, ports []matrix.PortProtocol, timeout time.Duration) error {
	results := make([]matrix.Result, len(ports))
	for i, pp := range ports {
		results[i] = p.Run(ctx, matrix.Probe{ID: i, Host: host, Port: pp.Port, Protocol: pp.Protocol, TimeoutMillis: timeout.Milliseconds()})
	}
	var silent []string
	for i, r := range results {
		if r.Outcome != matrix.Connected {
			silent = append(silent, fmt.Sprintf("%s: %s (%s)", ports[i], r.Outcome, r.Detail))
		}
	}
	if len(silent) > 0 {
		return fmt.Errorf("not ready: %d of %d ports do not answer on %s: %s", len(silent), len(ports), host, strings.Join(silent, "; "))
	}
	return nil
}

// resolve turns the probe's host into one address: an IP literal as is, a
// DNS name through the resolver (first address returned).
func (p *Prober) resolve(ctx context.Context, host string) (netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Unmap(), nil
	}
	if p.Resolver != nil {
		return p.Resolver.LookupAddr(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolving %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolving %q: no addresses", host)
	}
	return addrs[0].Unmap(), nil
}

func (p *Prober) exchangeSCTP(ctx context.Context, dest netip.AddrPort, req wire.Request) ([]byte, error) {
	p.sctpOnce.Do(func() { p.sctpStack, p.sctpErr = sctp.NewStack(p.sctpMode) })
	if p.sctpErr != nil {
		return nil, p.sctpErr
	}
	return p.sctpStack.Exchange(ctx, dest, wire.Marshal(req))
}

// errRefused marks refusals detected by the prober itself (an ICMP error
// read from a raw socket).
var errRefused = errors.New("refused")

// classify maps an error to an outcome and a detail message.
func classify(err error) (matrix.Outcome, string) {
	var netErr net.Error
	var stalled *sctp.StalledError
	switch {
	case errors.As(err, &stalled):
		return matrix.Timeout, fmt.Sprintf("no answer before the probe timeout: the SCTP association stalled in %s (%d packets sent, %d received)",
			stalled.State, stalled.Sent, stalled.Received)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return matrix.Timeout, "no answer before the probe timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EACCES),
		errors.Is(err, sctp.ErrRefused), errors.Is(err, errRefused):
		return matrix.Refused, err.Error()
	case errors.Is(err, syscall.EPERM):
		// Netfilter dropping an outgoing packet in the source's own namespace.
		return matrix.Refused, "blocked in the source namespace: " + err.Error()
	}
	return matrix.Error, err.Error()
}
