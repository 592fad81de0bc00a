package server

import (
	"fmt"
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpConn is a UDP socket bound to a wildcard address that answers from the
// address each request was sent to (IP_PKTINFO / IPV6_PKTINFO). Without that
// the kernel picks the source by route, and in a namespace with several
// addresses the client would get the answer from another address than it
// probed, which it reports as a wrong peer.
type udpConn struct {
	conn net.PacketConn
	v4   *ipv4.PacketConn
	v6   *ipv6.PacketConn
}

func listenUDP(network, addr string) (*udpConn, error) {
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	c := &udpConn{conn: conn}
	if network == "udp4" {
		c.v4 = ipv4.NewPacketConn(conn)
		err = c.v4.SetControlMessage(ipv4.FlagDst, true)
	} else {
		c.v6 = ipv6.NewPacketConn(conn)
		err = c.v6.SetControlMessage(ipv6.FlagDst, true)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("asking for destination addresses on %s: %w", addr, err)
	}
	return c, nil
}

// receive reads one datagram, its sender and the local address it was sent to.
func (c *udpConn) receive(buf []byte) (int, net.Addr, net.IP, error) {
	if c.v4 != nil {
		n, cm, from, err := c.v4.ReadFrom(buf)
		if err != nil || cm == nil {
			return n, from, nil, err
		}
		return n, from, cm.Dst, nil
	}
	n, cm, from, err := c.v6.ReadFrom(buf)
	if err != nil || cm == nil {
		return n, from, nil, err
	}
	return n, from, cm.Dst, nil
}

// reply sends b to the client from local.
func (c *udpConn) reply(b []byte, to net.Addr, local net.IP) error {
	var err error
	if c.v4 != nil {
		_, err = c.v4.WriteTo(b, &ipv4.ControlMessage{Src: local}, to)
	} else {
		_, err = c.v6.WriteTo(b, &ipv6.ControlMessage{Src: local}, to)
	}
	return err
}

// Close closes the socket.
func (c *udpConn) Close() error { return c.conn.Close() }
