package testnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
)

// The kernel has no SCTP sockets, but forwards, filters and tracks SCTP. A
// probe is the first half of the four-way handshake over raw IP sockets:
// INIT from the client, INIT-ACK from the server carrying the server's name
// in its state cookie. It crosses the enforcer exactly like a real
// association's first exchange (conntrack sees the INIT-ACK as a reply).

const (
	chunkInit    = 1
	chunkInitAck = 2
	paramCookie  = 7
	headerLen    = 12
	initLen      = 20
)

// rawSCTP is a raw IP socket for protocol 132 of one family.
type rawSCTP struct {
	conn *net.IPConn
}

func openRawSCTP(v4 bool) (*rawSCTP, error) {
	network := "ip6:132"
	if v4 {
		network = "ip4:132"
	}
	c, err := net.ListenIP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("raw SCTP socket: %w", err)
	}
	return &rawSCTP{conn: c}, nil
}

func (s *rawSCTP) Close() error { return s.conn.Close() }

// sctpPacket is the part of an SCTP packet with one INIT or INIT-ACK chunk
// the probes use.
type sctpPacket struct {
	srcPort, dstPort uint16
	vtag             uint32
	chunk            uint8
	initiateTag      uint32
	cookie           []byte
}

func (p sctpPacket) marshal() []byte {
	var params []byte
	if len(p.cookie) > 0 {
		value := p.cookie
		for len(value)%4 != 0 {
			value = append(value, 0)
		}
		params = binary.BigEndian.AppendUint16(params, paramCookie)
		params = binary.BigEndian.AppendUint16(params, uint16(4+len(value)))
		params = append(params, value...)
	}
	b := make([]byte, headerLen+initLen, headerLen+initLen+len(params))
	binary.BigEndian.PutUint16(b[0:], p.srcPort)
	binary.BigEndian.PutUint16(b[2:], p.dstPort)
	binary.BigEndian.PutUint32(b[4:], p.vtag)
	c := b[headerLen:]
	c[0] = p.chunk
	binary.BigEndian.PutUint16(c[2:], uint16(initLen+len(params)))
	binary.BigEndian.PutUint32(c[4:], p.initiateTag)
	binary.BigEndian.PutUint32(c[8:], 65535) // advertised receiver window
	binary.BigEndian.PutUint16(c[12:], 1)    // outbound streams
	binary.BigEndian.PutUint16(c[14:], 1)    // inbound streams
	binary.BigEndian.PutUint32(c[16:], p.initiateTag)
	b = append(b, params...)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func parseSCTP(b []byte) (sctpPacket, bool) {
	if len(b) < headerLen+initLen {
		return sctpPacket{}, false
	}
	p := sctpPacket{
		srcPort: binary.BigEndian.Uint16(b[0:]),
		dstPort: binary.BigEndian.Uint16(b[2:]),
		vtag:    binary.BigEndian.Uint32(b[4:]),
	}
	c := b[headerLen:]
	p.chunk = c[0]
	p.initiateTag = binary.BigEndian.Uint32(c[4:])
	length := int(binary.BigEndian.Uint16(c[2:]))
	if length > len(c) {
		return sctpPacket{}, false
	}
	for params := c[initLen:length]; len(params) >= 4; {
		typ, plen := binary.BigEndian.Uint16(params), int(binary.BigEndian.Uint16(params[2:]))
		if plen < 4 || plen > len(params) {
			break
		}
		if typ == paramCookie {
			p.cookie = bytes.TrimRight(params[4:plen], "\x00")
		}
		params = params[(plen+3)&^3:]
	}
	return p, true
}

// respond answers every INIT to one of ports with an INIT-ACK naming name,
// until the socket closes.
func (s *rawSCTP) respond(ports map[uint16]bool, name string) {
	buf := make([]byte, 2048)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		in, ok := parseSCTP(buf[:n])
		if !ok || in.chunk != chunkInit || !ports[in.dstPort] {
			continue
		}
		reply := sctpPacket{
			srcPort: in.dstPort, dstPort: in.srcPort, vtag: in.initiateTag,
			chunk: chunkInitAck, initiateTag: rand.Uint32() | 1, cookie: []byte(name),
		}
		s.conn.WriteTo(reply.marshal(), addr)
	}
}

// probeSCTP sends INITs from the namespace to dst:port until an INIT-ACK
// answers or the timeout passes, and returns the name in its cookie.
func probeSCTP(ns *netnstest.Netns, dst netip.Addr, port uint16, timeout time.Duration) (string, error) {
	var s *rawSCTP
	if err := ns.Do(func() (err error) { s, err = openRawSCTP(dst.Is4()); return err }); err != nil {
		return "", err
	}
	defer s.Close()
	deadline := time.Now().Add(timeout)
	init := sctpPacket{
		srcPort: uint16(32768 + rand.IntN(28000)), dstPort: port,
		chunk: chunkInit, initiateTag: rand.Uint32() | 1,
	}
	to := &net.IPAddr{IP: dst.AsSlice()}
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		if _, err := s.conn.WriteTo(init.marshal(), to); err != nil {
			return "", fmt.Errorf("sending INIT: %w", err)
		}
		retry := time.Now().Add(250 * time.Millisecond)
		s.conn.SetReadDeadline(earliest(retry, deadline))
		for {
			n, from, err := s.conn.ReadFrom(buf)
			if err != nil {
				break // deadline: send again or give up
			}
			in, ok := parseSCTP(buf[:n])
			fromIP, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if ok && in.chunk == chunkInitAck && in.vtag == init.initiateTag && in.srcPort == port &&
				in.dstPort == init.srcPort && fromIP.Unmap() == dst {
				return string(in.cookie), nil
			}
		}
	}
	return "", errTimeout
}

var errTimeout = errors.New("timeout")
