package prober_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/prober"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// udpResponder listens on 127.0.0.1 and answers each request with the
// datagrams answers returns, each sent from the socket it names (nil: the
// listening one). It runs until the test ends.
func udpResponder(t *testing.T, answers func(req wire.Request, listener *net.UDPConn) []datagram) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, wire.MaxMessage)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := wire.ParseRequest(buf[:n])
			if err != nil {
				continue
			}
			for _, d := range answers(req, conn) {
				_, _ = d.from.WriteToUDPAddrPort(wire.Marshal(d.answer), from)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

type datagram struct {
	from   *net.UDPConn
	answer wire.Answer
}

func answerOf(req wire.Request, identity string) wire.Answer {
	return wire.Answer{Version: wire.Version, Nonce: req.Nonce, Identity: identity, Container: "serve-80-udp", Port: 80, Protocol: "UDP"}
}

func probeUDP(t *testing.T, dest netip.AddrPort) matrix.Result {
	t.Helper()
	return prober.New(sctp.Userspace).Run(context.Background(), matrix.Probe{
		Host: dest.Addr().String(), Port: int32(dest.Port()), Protocol: "UDP", Expect: "y/b", TimeoutMillis: 1000})
}

func TestUDPReplyFromAnotherAddressIsAWrongPeer(t *testing.T) {
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dest := udpResponder(t, func(req wire.Request, _ *net.UDPConn) []datagram {
		return []datagram{{other, answerOf(req, "y/b")}}
	})
	r := probeUDP(t, dest)
	if r.Outcome != matrix.WrongPeer || r.Peer != "y/b/serve-80-udp" || !strings.Contains(r.Detail, "from 127.0.0.2:") {
		t.Errorf("result %+v; want wrong-peer, answered by y/b/serve-80-udp from 127.0.0.2", r)
	}
}

func TestUDPSkipsAnswersToEarlierRequests(t *testing.T) {
	dest := udpResponder(t, func(req wire.Request, listener *net.UDPConn) []datagram {
		stale := answerOf(wire.NewRequest(), "y/b")
		return []datagram{{listener, stale}, {listener, answerOf(req, "y/b")}}
	})
	if r := probeUDP(t, dest); r.Outcome != matrix.Connected || r.Peer != "y/b/serve-80-udp" {
		t.Errorf("result %+v; want connected: a late answer to an earlier probe is no answer to this one", r)
	}
}

func TestUDPSkipsStrangersAndStillSeesRefusals(t *testing.T) {
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	dest := udpResponder(t, func(req wire.Request, listener *net.UDPConn) []datagram {
		return []datagram{{stranger, answerOf(wire.NewRequest(), "z/c")}, {listener, answerOf(req, "y/b")}}
	})
	if r := probeUDP(t, dest); r.Outcome != matrix.Connected {
		t.Errorf("result %+v; want connected", r)
	}
	// A port nobody listens on: the ICMP port unreachable still arrives.
	closed, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.LocalAddr().(*net.UDPAddr).AddrPort()
	closed.Close()
	if r := probeUDP(t, addr); r.Outcome != matrix.Refused {
		t.Errorf("closed port: %+v; want refused", r)
	}
}
