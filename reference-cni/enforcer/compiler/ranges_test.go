package compiler

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestPrefixRange(t *testing.T) {
	for _, tc := range []struct{ prefix, first, last string }{
		{"10.0.0.0/8", "10.0.0.0", "10.255.255.255"},
		{"10.1.2.3/24", "10.1.2.0", "10.1.2.255"},
		{"192.0.2.7/32", "192.0.2.7", "192.0.2.7"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"fd00:10:244:1::/64", "fd00:10:244:1::", "fd00:10:244:1:ffff:ffff:ffff:ffff"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		got := prefixRange(netip.MustParsePrefix(tc.prefix))
		if got.first.String() != tc.first || got.last.String() != tc.last {
			t.Errorf("prefixRange(%s) = %s-%s, want %s-%s", tc.prefix, got.first, got.last, tc.first, tc.last)
		}
	}
}

func TestSubtract(t *testing.T) {
	r := func(a, b string) addrRange { return addrRange{netip.MustParseAddr(a), netip.MustParseAddr(b)} }
	got := subtract([]addrRange{prefixRange(netip.MustParsePrefix("10.0.0.0/24"))}, r("10.0.0.16", "10.0.0.31"))
	got = subtract(got, r("10.0.0.0", "10.0.0.0"))
	got = subtract(got, r("10.0.0.255", "10.0.1.5"))
	want := []addrRange{r("10.0.0.1", "10.0.0.15"), r("10.0.0.32", "10.0.0.254")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("subtract = %v, want %v", got, want)
	}
}

func TestDisjointRectanglesSimple(t *testing.T) {
	ip := netip.MustParseAddr
	rects := []rect{
		{remote: prefixRange(netip.MustParsePrefix("10.0.0.0/8")), ports: protocolPorts(protocolTCP, 80, 80)},
		{remote: addrRange{ip("10.244.1.5"), ip("10.244.1.5")}, ports: protocolPorts(protocolTCP, 80, 90)},
		{remote: addrRange{ip("10.244.1.6"), ip("10.244.1.6")}, ports: protocolPorts(protocolTCP, 80, 90)},
	}
	got := disjointRectangles(rects)
	want := []string{
		"10.0.0.0-10.244.1.4 proto 6-6 port 80-80",
		"10.244.1.5-10.244.1.6 proto 6-6 port 80-90",
		"10.244.1.7-10.255.255.255 proto 6-6 port 80-80",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestSpanRectanglesSplitsAtProtocols(t *testing.T) {
	remote := addrRange{netip.MustParseAddr("::1"), netip.MustParseAddr("::1")}
	for _, tc := range []struct {
		s    span
		want string
	}{
		{everyProtocolAndPort(), "[::1-::1 proto 0-255 port 0-65535]"},
		{span{6<<16 | 100, 17<<16 | 5}, "[::1-::1 proto 6-6 port 100-65535 ::1-::1 proto 7-16 port 0-65535 ::1-::1 proto 17-17 port 0-5]"},
		{span{6 << 16, 7<<16 | 5}, "[::1-::1 proto 6-6 port 0-65535 ::1-::1 proto 7-7 port 0-5]"},
		{span{6<<16 | 3, 7<<16 | 0xffff}, "[::1-::1 proto 6-6 port 3-65535 ::1-::1 proto 7-7 port 0-65535]"},
	} {
		if got := fmt.Sprint(spanRectangles(remote, tc.s)); got != tc.want {
			t.Errorf("spanRectangles(%v) = %s, want %s", tc.s, got, tc.want)
		}
	}
}

// TestDisjointRectanglesRandom checks, on random rects over a small address
// and port space, that the rectangles are disjoint, sorted and cover exactly
// the union of the rects.
func TestDisjointRectanglesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := netip.MustParseAddr("10.0.0.0")
	addr := func(i int) netip.Addr {
		a := base
		for range i {
			a = a.Next()
		}
		return a
	}
	protocols := []uint8{protocolTCP, protocolUDP, protocolSCTP}
	for iter := range 300 {
		var rects []rect
		for range 1 + rng.IntN(6) {
			lo := rng.IntN(12)
			hi := lo + rng.IntN(12-lo)
			var s span
			if rng.IntN(5) == 0 {
				s = everyProtocolAndPort()
			} else {
				p := uint16(rng.IntN(8))
				s = protocolPorts(protocols[rng.IntN(3)], p, p+uint16(rng.IntN(4)))
			}
			rects = append(rects, rect{remote: addrRange{addr(lo), addr(hi)}, ports: s})
		}
		got := disjointRectangles(rects)
		for i := 1; i < len(got); i++ {
			if got[i-1].Compare(got[i]) >= 0 {
				t.Fatalf("iteration %d: not sorted: %v", iter, got)
			}
		}
		for a := range 13 {
			for _, proto := range []uint8{0, protocolTCP, protocolUDP, protocolSCTP, 255} {
				for port := range uint16(13) {
					ip := addr(a)
					v := uint32(proto)<<16 | uint32(port)
					want := false
					for _, r := range rects {
						if r.remote.contains(ip) && r.ports.first <= v && v <= r.ports.last {
							want = true
						}
					}
					hits := 0
					for _, g := range got {
						if g.RemoteFirst.Compare(ip) <= 0 && ip.Compare(g.RemoteLast) <= 0 &&
							g.ProtocolFirst <= proto && proto <= g.ProtocolLast && g.PortFirst <= port && port <= g.PortLast {
							hits++
						}
					}
					if hits > 1 || (hits == 1) != want {
						t.Fatalf("iteration %d: %s proto %d port %d: %d rectangles match, want allowed=%v\nrects %v\ngot %v", iter, ip, proto, port, hits, want, rects, got)
					}
				}
			}
		}
	}
}
