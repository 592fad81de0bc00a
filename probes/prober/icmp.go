package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IP protocol numbers for icmp.ParseMessage.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// icmpSocket is a socket for ICMP echo: an unprivileged ping socket where
// net.ipv4.ping_group_range allows it, a raw socket otherwise (root or
// CAP_NET_RAW). Only a raw socket reads the destination unreachable errors.
type icmpSocket struct {
	conn *icmp.PacketConn
	raw  bool
}

func listenICMP(v4 bool) (icmpSocket, error) {
	ping, raw, addr := "udp6", "ip6:ipv6-icmp", "::"
	if v4 {
		ping, raw, addr = "udp4", "ip4:icmp", "0.0.0.0"
	}
	if conn, err := icmp.ListenPacket(ping, addr); err == nil {
		return icmpSocket{conn: conn}, nil
	}
	conn, err := icmp.ListenPacket(raw, addr)
	if err != nil {
		return icmpSocket{}, fmt.Errorf("opening an ICMP socket (ping sockets not allowed either): %w", err)
	}
	return icmpSocket{conn: conn, raw: true}, nil
}

// echo sends ICMP echo requests to dest until a matching reply arrives, a
// destination unreachable about them arrives (refused), or ctx ends. ICMP
// carries no identity: the peer reported is the replying address.
func (p *Prober) echo(ctx context.Context, dest netip.Addr) (string, error) {
	sock, err := listenICMP(dest.Is4())
	if err != nil {
		return "", err
	}
	defer sock.conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = sock.conn.SetDeadline(time.Now()) })
	defer stop()

	var ids [4]byte
	payload := make([]byte, 16)
	_, _ = rand.Read(ids[:]) // crypto/rand.Read never fails on Linux.
	_, _ = rand.Read(payload)
	id, seq := int(binary.BigEndian.Uint16(ids[:2])), int(binary.BigEndian.Uint16(ids[2:]))
	var request icmp.Type = ipv4.ICMPTypeEcho
	proto := protoICMP
	if !dest.Is4() {
		request, proto = ipv6.ICMPTypeEchoRequest, protoICMPv6
	}
	// The kernel fills in the ICMPv6 checksum; Marshal computes the ICMPv4 one.
	msg, err := (&icmp.Message{Type: request, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
	if err != nil {
		return "", fmt.Errorf("encoding ICMP echo: %w", err)
	}
	var to net.Addr = &net.UDPAddr{IP: dest.AsSlice()}
	if sock.raw {
		to = &net.IPAddr{IP: dest.AsSlice()}
	}
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 1500)
	for wait := initialRetransmit; ; wait = min(2*wait, maxRetransmit) {
		if _, err := sock.conn.WriteTo(msg, to); err != nil {
			return "", ctxErr(ctx, fmt.Errorf("sending ICMP echo: %w", err))
		}
		next := time.Now().Add(wait)
		if !deadline.IsZero() && deadline.Before(next) {
			next = deadline
		}
		_ = sock.conn.SetReadDeadline(next)
		for {
			n, from, err := sock.conn.ReadFrom(buf)
			if err != nil {
				var netErr net.Error
				if errors.As(err, &netErr) && netErr.Timeout() && ctx.Err() == nil {
					break // send again
				}
				return "", ctxErr(ctx, err)
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			switch body := m.Body.(type) {
			case *icmp.Echo:
				fromAddr := addrOf(from)
				isReply := m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply
				// A ping socket rewrites the echo ID and only delivers its own replies.
				if isReply && bytes.Equal(body.Data, payload) && body.Seq == seq && (!sock.raw || body.ID == id) && fromAddr == dest {
					return fromAddr.String(), nil
				}
			case *icmp.DstUnreach:
				if quotesEcho(body.Data, dest, id, seq) {
					return "", fmt.Errorf("%w: ICMP destination unreachable (code %d) from %s", errRefused, m.Code, addrOf(from))
				}
			}
		}
	}
}

// quotesEcho reports whether the packet quoted in an ICMP error is our echo
// request to dest.
func quotesEcho(quoted []byte, dest netip.Addr, id, seq int) bool {
	var hdrLen int
	var dst netip.Addr
	switch {
	case dest.Is4() && len(quoted) >= 20 && quoted[0]>>4 == 4:
		hdrLen = int(quoted[0]&0x0f) * 4
		dst = netip.AddrFrom4([4]byte(quoted[16:20]))
	case !dest.Is4() && len(quoted) >= 40 && quoted[0]>>4 == 6:
		hdrLen = 40
		dst = netip.AddrFrom16([16]byte(quoted[24:40]))
	default:
		return false
	}
	if len(quoted) < hdrLen+8 || dst != dest {
		return false
	}
	echo := quoted[hdrLen:]
	return int(binary.BigEndian.Uint16(echo[4:])) == id && int(binary.BigEndian.Uint16(echo[6:])) == seq
}

func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}
