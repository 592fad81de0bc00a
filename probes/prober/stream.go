package prober

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

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

// exchangeUDP sends the request on a connected UDP socket, so an ICMP port
// unreachable comes back as ECONNREFUSED, and waits for the answer,
// resending the request on the retransmission schedule.
func exchangeUDP(ctx context.Context, dest netip.AddrPort, req wire.Request) ([]byte, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", dest.String())
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
		if _, err := conn.Write(msg); err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("sending the request: %w", err))
		}
		next := time.Now().Add(wait)
		if !deadline.IsZero() && deadline.Before(next) {
			next = deadline
		}
		_ = conn.SetReadDeadline(next)
		n, err := conn.Read(buf)
		if err == nil {
			return buf[:n], nil
		}
		var netErr net.Error
		if !errors.As(err, &netErr) || !netErr.Timeout() || ctx.Err() != nil {
			return nil, ctxErr(ctx, err)
		}
		// No answer yet: send again.
	}
}

// ctxErr prefers the context's error once the context has ended, so a probe
// that ran out of time is a timeout whatever the socket said.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
