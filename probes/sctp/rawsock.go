package sctp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// protoSCTP is the IP protocol number of SCTP.
const protoSCTP = 132

// receiveBuffer is the receive buffer asked for on every raw socket. Each
// one gets a copy of every SCTP packet of its network namespace, and a probe
// round delivers a burst of INITs from every source at once while the
// process may wait for a CPU: the default (about 200 KiB, a few hundred
// small packets) can overflow, and a dropped packet costs a retransmission
// of 200 ms or more out of a 1 s probe. Without CAP_NET_ADMIN the kernel
// caps it at net.core.rmem_max.
const receiveBuffer = 4 << 20

// rawSocket is a raw IPv4 or IPv6 socket for IP protocol 132. The kernel
// hands it a copy of every SCTP packet delivered to this network namespace
// and, with IP(V6)_RECVERR, the ICMP errors caused by packets it sent.
type rawSocket struct {
	family int
	file   *os.File
	conn   syscall.RawConn
}

// received is one read from a raw socket: either an SCTP packet (payload,
// with the addresses it travelled between) or an ICMP error about a packet
// this socket sent (icmpErr set; payload starts with the quoted SCTP header
// and remote is the original destination).
type received struct {
	payload []byte
	local   netip.Addr
	remote  netip.Addr
	icmpErr error
}

func openRawSocket(family int) (*rawSocket, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protoSCTP)
	if err != nil {
		return nil, fmt.Errorf("opening raw SCTP socket (family %d): %w", family, err)
	}
	opts := [][2]int{{unix.IPPROTO_IP, unix.IP_RECVERR}}
	if family == unix.AF_INET6 {
		opts = [][2]int{{unix.IPPROTO_IPV6, unix.IPV6_RECVERR}, {unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}}
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("setting option %d on raw SCTP socket: %w", o[1], err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer); err != nil {
		// Best effort: the default buffer still works, with more drops under load.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
	}
	file := os.NewFile(uintptr(fd), "sctp-raw")
	conn, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("raw SCTP socket: %w", err)
	}
	return &rawSocket{family: family, file: file, conn: conn}, nil
}

func (s *rawSocket) close() error { return s.file.Close() }

// receive blocks until a packet or an ICMP error arrives, or the socket is
// closed. buf must hold a whole packet.
func (s *rawSocket) receive(buf []byte) (received, error) {
	oob := make([]byte, 512)
	var r received
	var opErr error
	err := s.conn.Read(func(fd uintptr) bool {
		n, oobn, _, from, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE)
		if err == nil {
			r, opErr = s.parseError(buf[:n], oob[:oobn], from)
			return true
		}
		n, oobn, _, from, err = unix.Recvmsg(int(fd), buf, oob, 0)
		switch {
		case err == unix.EAGAIN:
			return false
		case err != nil:
			// A pending socket error (set by an ICMP error that is also in
			// the error queue) is reported once by a plain read; skip it.
			opErr = errSkip
		default:
			r, opErr = s.parsePacket(buf[:n], oob[:oobn], from)
		}
		return true
	})
	if err != nil {
		return received{}, err
	}
	return r, opErr
}

// sizeofExtendedErr is sizeof(struct sock_extended_err); the offender's
// address follows it in the control message.
const sizeofExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))

// errSkip marks a read that produced nothing to dispatch.
var errSkip = errors.New("nothing to dispatch")

func (s *rawSocket) parsePacket(b, oob []byte, from unix.Sockaddr) (received, error) {
	if s.family == unix.AF_INET {
		// IPv4 raw sockets deliver the IP header too.
		if len(b) < 20 || b[0]>>4 != 4 {
			return received{}, errSkip
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return received{}, errSkip
		}
		return received{
			payload: b[ihl:],
			remote:  netip.AddrFrom4([4]byte(b[12:16])),
			local:   netip.AddrFrom4([4]byte(b[16:20])),
		}, nil
	}
	sa, ok := from.(*unix.SockaddrInet6)
	if !ok {
		return received{}, errSkip
	}
	r := received{payload: b, remote: netip.AddrFrom16(sa.Addr)}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return received{}, errSkip
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
			r.local = netip.AddrFrom16(info.Addr)
		}
	}
	if !r.local.IsValid() {
		return received{}, errSkip
	}
	return r, nil
}

// parseError decodes an entry of the socket's error queue: the kernel's
// extended error (an ICMP destination unreachable, usually) with the quoted
// SCTP header of the packet that caused it.
func (s *rawSocket) parseError(b, oob []byte, from unix.Sockaddr) (received, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return received{}, errSkip
	}
	for _, m := range msgs {
		isV4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
		isV6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if (!isV4 && !isV6) || len(m.Data) < sizeofExtendedErr {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		if ee.Origin != unix.SO_EE_ORIGIN_ICMP && ee.Origin != unix.SO_EE_ORIGIN_ICMP6 {
			continue
		}
		r := received{payload: b, icmpErr: icmpError(ee, m.Data[sizeofExtendedErr:])}
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			r.remote = netip.AddrFrom4(sa.Addr)
		case *unix.SockaddrInet6:
			r.remote = netip.AddrFrom16(sa.Addr)
		default:
			continue
		}
		if !refusesConnection(ee) {
			return received{}, errSkip
		}
		return r, nil
	}
	return received{}, errSkip
}

// refusesConnection reports whether an ICMP error means the destination (or
// a router) refused: destination unreachable, or for IPv6 an unrecognised
// next header (the IPv6 form of "protocol unreachable").
func refusesConnection(ee *unix.SockExtendedErr) bool {
	switch ee.Origin {
	case unix.SO_EE_ORIGIN_ICMP:
		return ee.Type == 3 && ee.Code != 4 // destination unreachable, except "fragmentation needed"
	case unix.SO_EE_ORIGIN_ICMP6:
		return ee.Type == 1 || (ee.Type == 4 && ee.Code == 1)
	}
	return false
}

func icmpError(ee *unix.SockExtendedErr, offender []byte) error {
	from := ""
	if len(offender) >= 8 {
		switch binary.NativeEndian.Uint16(offender) {
		case unix.AF_INET:
			from = " from " + netip.AddrFrom4([4]byte(offender[4:8])).String()
		case unix.AF_INET6:
			if len(offender) >= 24 {
				from = " from " + netip.AddrFrom16([16]byte(offender[8:24])).String()
			}
		}
	}
	kind := "ICMP"
	if ee.Origin == unix.SO_EE_ORIGIN_ICMP6 {
		kind = "ICMPv6"
	}
	return fmt.Errorf("%s type %d code %d (%w)%s", kind, ee.Type, ee.Code, syscall.Errno(ee.Errno), from)
}

// send transmits one SCTP packet to remote. A valid local address selects
// the source address (servers answer from the address they were reached on);
// otherwise the kernel picks it by route.
func (s *rawSocket) send(pkt []byte, local, remote netip.Addr) error {
	var sa unix.Sockaddr
	var oob []byte
	if s.family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Addr: remote.Unmap().As4()}
		if local.IsValid() {
			oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: local.Unmap().As4()})
		}
	} else {
		sa = &unix.SockaddrInet6{Addr: remote.As16()}
		if local.IsValid() {
			oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: local.As16()})
		}
	}
	var sendErr error
	err := s.conn.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), pkt, oob, sa, 0)
		return sendErr != unix.EAGAIN
	})
	if err != nil {
		return fmt.Errorf("sending SCTP packet to %s: %w", remote, err)
	}
	if sendErr != nil {
		return fmt.Errorf("sending SCTP packet to %s: %w", remote, sendErr)
	}
	return nil
}
