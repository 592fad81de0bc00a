package prober

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/sourceport"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// Consecutive UDP probes of one prober come from consecutive source ports,
// skipping one that is taken, so none reuses a recent probe's flow.
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
	start := 40000
	p.udpPorts = sourceport.StartingAt(start)
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{Port: start + 1})
	if err != nil {
		t.Skipf("port %d is in use here: %v", start+1, err)
	}
	defer taken.Close()
	dest := server.LocalAddr().(*net.UDPAddr).AddrPort()
	var got []uint16
	for range 3 {
		res := p.Run(context.Background(), matrix.Probe{Host: dest.Addr().String(), Port: int32(dest.Port()), Protocol: "UDP",
			Expect: "y/b", TimeoutMillis: 1000})
		if res.Outcome != matrix.Connected {
			t.Fatalf("probe: %s %s", res.Outcome, res.Detail)
		}
		got = append(got, <-sources)
	}
	want := []uint16{uint16(start), uint16(start + 2), uint16(start + 3)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("source ports %v, want %v (port %s was taken)", got, want, strconv.Itoa(start+1))
		}
	}
}
