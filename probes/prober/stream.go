package prober

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/probes/sourceport"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// exchangeTCP connects, sends the request line and reads the answer line.
func exchangeTCP(ctx context.Context, dest netip.AddrPort, req wire.Request) ([]byte, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", dest.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Write(wire.Marshal(req)); err != nil {
		return nil, fmt.Errorf("sending the request: %w", err)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, wire.MaxMessage), wire.MaxMessage).ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("connection closed before an answer")
		}
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return line, nil
}

// exchangeUDP sends the request to dest and waits for its answer, resending
// the request on the retransmission schedule. The socket is not connected,
// so an answer from another address than dest still arrives: when it
// carries this request's nonce it is a wrongSourceError (a wrong peer, not
// a timeout). IP_RECVERR / IPV6_RECVERR still report an ICMP port
// unreachable as ECONNREFUSED. Datagrams answering another request (a late
// answer to an earlier probe that used the same source port) and, from
// other addresses, anything that is no answer to this one, are skipped.
func exchangeUDP(ctx context.Context, dest netip.AddrPort, req wire.Request, ports *sourceport.Chooser) ([]byte, error) {
	conn, err := listenUDPFor(dest, ports)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	msg := wire.Marshal(req)
	buf := make([]byte, wire.MaxMessage)
	for wait := initialRetransmit; ; wait = min(2*wait, maxRetransmit) {
		if _, err := conn.WriteToUDPAddrPort(msg, dest); err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("sending the request: %w", err))
		}
		next := time.Now().Add(wait)
		if !deadline.IsZero() && deadline.Before(next) {
			next = deadline
		}
		_ = conn.SetReadDeadline(next)
		answer, err := readUDPAnswer(conn, buf, dest, req)
		if err == nil {
			return answer, nil
		}
		var netErr net.Error
		if !errors.As(err, &netErr) || !netErr.Timeout() || ctx.Err() != nil {
			return nil, ctxErr(ctx, err)
		}
		// No answer yet: send again.
	}
}

// listenUDPFor opens an unconnected UDP socket of dest's family that
// reports ICMP errors (IP_RECVERR / IPV6_RECVERR), on the source port ports
// chooses for dest (see package sourceport for why not a random one).
func listenUDPFor(dest netip.AddrPort, ports *sourceport.Chooser) (*net.UDPConn, error) {
	network, level, option := "udp4", unix.IPPROTO_IP, unix.IP_RECVERR
	if !dest.Addr().Is4() {
		network, level, option = "udp6", unix.IPPROTO_IPV6, unix.IPV6_RECVERR
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		if err := c.Control(func(fd uintptr) { sockErr = unix.SetsockoptInt(int(fd), level, option, 1) }); err != nil {
			return err
		}
		if sockErr != nil {
			return fmt.Errorf("asking for ICMP errors: %w", sockErr)
		}
		return nil
	}}
	return sourceport.Bind(ports, sourceport.Key{Protocol: "UDP", Dest: dest}, func(port int) (*net.UDPConn, error) {
		pc, err := lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(port))
		if err != nil {
			return nil, err
		}
		return pc.(*net.UDPConn), nil
	})
}

// readUDPAnswer reads datagrams until one from dest, or one answering req
// from elsewhere, arrives (see exchangeUDP).
func readUDPAnswer(conn *net.UDPConn, buf []byte, dest netip.AddrPort, req wire.Request) ([]byte, error) {
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		a, err := wire.ParseAnswer(buf[:n], req)
		switch {
		case errors.Is(err, wire.ErrOtherNonce):
			continue
		case from != dest && err != nil:
			continue
		case from != dest:
			return nil, &wrongSourceError{from: from, to: dest, peer: a.Peer()}
		}
		return buf[:n], nil
	}
}

// wrongSourceError is an answer to the probe that came from another
// address than the probe was sent to.
type wrongSourceError struct {
	from, to netip.AddrPort
	// peer is the identity the answer carries.
	peer string
}

func (e *wrongSourceError) Error() string {
	return fmt.Sprintf("answered by %s from %s, the probe was sent to %s", e.peer, e.from, e.to)
}

// ctxErr prefers the context's error once the context has ended, so a probe
// that ran out of time is a timeout whatever the socket said.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
