package sctp

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/probes/sourceport"
)

// Client associations to one remote never share a local port: each takes
// the one package sourceport chooses, so that none reuses a recent one's
// conntrack entry (random ports did: a CNI accepting established flows then
// let denied probes in). The port stays reserved until released.
func TestClientPortsAreNotReused(t *testing.T) {
	remote := netip.MustParseAddrPort("10.0.0.7:80")
	ports := sourceport.New()
	seen := map[uint16]bool{}
	for range 5 {
		port, release, err := reservePort(unix.AF_INET, remote, ports)
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] || port < 32768 || port > 60999 {
			release()
			t.Fatalf("local port %d: already used %v, or outside 32768-60999", port, seen)
		}
		seen[port] = true
		second, releaseSecond, err := reservePort(unix.AF_INET, remote, ports)
		release()
		if err != nil {
			t.Fatalf("a second reservation while %d is held: %v", port, err)
		}
		releaseSecond()
		seen[second] = true
	}
}
