package prober

import (
	"context"
	"net"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// UDP probes to one destination never share a source port: each takes the
// one package sourceport chooses, none a recent probe's flow.
func TestUDPProbesDoNotReuseSourcePorts(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	sources := make(chan uint16, 8)
	go func() {
		buf := make([]byte, wire.MaxMessage)
		for {
			n, from, err := server.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := wire.ParseRequest(buf[:n])
			if err != nil {
				continue
			}
			sources <- from.Port()
			answer := wire.Answer{Version: wire.Version, Nonce: req.Nonce, Identity: "y/b", Container: "serve-80-udp", Port: 80, Protocol: "UDP"}
			_, _ = server.WriteToUDPAddrPort(wire.Marshal(answer), from)
		}
	}()
	p := New(sctp.Userspace)
	dest := server.LocalAddr().(*net.UDPAddr).AddrPort()
	seen := map[uint16]bool{}
	for range 5 {
		res := p.Run(context.Background(), matrix.Probe{Host: dest.Addr().String(), Port: int32(dest.Port()), Protocol: "UDP",
			Expect: "y/b", TimeoutMillis: 1000})
		if res.Outcome != matrix.Connected {
			t.Fatalf("probe: %s %s", res.Outcome, res.Detail)
		}
		port := <-sources
		if seen[port] || port < 32768 || port > 60999 {
			t.Fatalf("source port %d: already used %v, or outside 32768-60999", port, seen)
		}
		seen[port] = true
	}
}
