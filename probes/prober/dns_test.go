package prober

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
)

func TestResolverCandidates(t *testing.T) {
	r := NewResolver("10.96.0.10", "x.svc.cluster.local, svc.cluster.local,cluster.local.")
	for host, want := range map[string][]string{
		"web":   {"web.x.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."},
		"web.y": {"web.y.x.svc.cluster.local.", "web.y.svc.cluster.local.", "web.y.cluster.local.", "web.y."},
		"a.b.c.d.e.f": {"a.b.c.d.e.f.", "a.b.c.d.e.f.x.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.",
			"a.b.c.d.e.f.cluster.local."},
		"web.x.svc.cluster.local.": {"web.x.svc.cluster.local."},
	} {
		if got := r.candidates(host); !slices.Equal(got, want) {
			t.Errorf("candidates(%q) = %q, want %q", host, got, want)
		}
	}
	if NewResolver("", "a") != nil {
		t.Error("a resolver without a server")
	}
}

// fakeDNS answers A queries for the names in records, is authoritative and
// says NXDOMAIN for every other name; with silent set it never answers.
func fakeDNS(t *testing.T, records map[string]netip.Addr, silent bool) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if silent || n < 12 {
				continue
			}
			if reply := answer(buf[:n], records); reply != nil {
				_, _ = conn.WriteTo(reply, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// answer builds the reply to one query.
func answer(query []byte, records map[string]netip.Addr) []byte {
	var labels []string
	i := 12
	for i < len(query) && query[i] != 0 {
		l := int(query[i])
		if i+1+l > len(query) {
			return nil
		}
		labels = append(labels, string(query[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(query) {
		return nil
	}
	question := query[12 : i+5]
	qtype := binary.BigEndian.Uint16(query[i+1:])
	name := strings.Join(labels, ".") + "."
	addr, known := records[name]
	flags := uint16(0x8400) // response, authoritative
	if !known {
		flags |= 3 // NXDOMAIN
	}
	reply := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(query))
	reply = binary.BigEndian.AppendUint16(reply, flags)
	answers := uint16(0)
	if known && qtype == 1 {
		answers = 1
	}
	reply = append(reply, 0, 1, byte(answers>>8), byte(answers), 0, 0, 0, 0)
	reply = append(reply, question...)
	if answers == 1 {
		reply = append(reply, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4)
		reply = append(reply, addr.AsSlice()...)
	}
	return reply
}

func TestResolverLookup(t *testing.T) {
	web := netip.MustParseAddr("10.96.3.4")
	server := fakeDNS(t, map[string]netip.Addr{"web.x.svc.cluster.local.": web}, false)
	r := NewResolver(server, "y.svc.cluster.local,x.svc.cluster.local")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The first search domain has no such name: the second has.
	if got, err := r.LookupAddr(ctx, "web"); err != nil || got != web {
		t.Errorf("web: %v, %v; want %v", got, err, web)
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupAddr(ctx, "db"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("db: %v, want not found", err)
	}

	// A server that never answers: the probe's deadline ends the lookup.
	p := New("")
	p.Resolver = NewResolver(fakeDNS(t, nil, true), "x.svc.cluster.local")
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if _, err := p.resolve(short, "web"); err == nil {
		t.Fatal("a silent server resolved a name")
	} else if o, _ := classify(err); o != matrix.Timeout {
		t.Errorf("a silent server: %s (%v), want timeout", o, err)
	}
}
