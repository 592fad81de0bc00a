package sctp

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/probes/sourceport"
)

// Client associations take their local ports in turn, skipping a port in
// use, so that no association reuses a recent one's conntrack entry (random
// ports did: a CNI accepting established flows then let denied probes in).
func TestClientPortsAreTakenInTurn(t *testing.T) {
	start := 40100
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{Port: start + 1})
	if err != nil {
		t.Skipf("port %d is in use here: %v", start+1, err)
	}
	defer taken.Close()
	ports := sourceport.StartingAt(start)
	var got []uint16
	for range 3 {
		port, release, err := reservePort(unix.AF_INET, ports)
		if err != nil {
			t.Fatal(err)
		}
		release()
		got = append(got, port)
	}
	want := []uint16{uint16(start), uint16(start + 2), uint16(start + 3)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("local ports %v, want %v (port %d was taken)", got, want, start+1)
		}
	}
}
