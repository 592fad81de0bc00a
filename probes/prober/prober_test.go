package prober_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/internal/netlab"
	"github.com/netpolcheck/netpolcheck/probes/prober"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/server"
)

// serveIn runs server.Serve in the node's namespace until the test ends.
func serveIn(t *testing.T, lab *netlab.Lab, node, identity string, ports ...server.Port) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go lab.Do(lab.Node(node), func() {
		done <- server.Serve(ctx, server.Config{Identity: identity, Ports: ports, SCTPMode: sctp.Userspace}, func() { close(ready) })
	})
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve in %s: %v", node, err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve in %s: %v", node, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve in %s not ready", node)
	}
}

// probeFrom runs probes from the node's namespace.
func probeFrom(t *testing.T, lab *netlab.Lab, node string, probes ...matrix.Probe) []matrix.Result {
	t.Helper()
	var results []matrix.Result
	lab.Do(lab.Node(node), func() {
		p := prober.New(sctp.Userspace)
		for _, pr := range probes {
			results = append(results, p.Run(context.Background(), pr))
		}
		if err := p.Close(); err != nil {
			t.Errorf("closing the prober: %v", err)
		}
	})
	return results
}

func TestProberOutcomes(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	b := lab.Node("y/b")
	// A second address on y/b: UDP and SCTP answers must come from the
	// address the probe was sent to, or the client reports a wrong peer (UDP)
	// or drops them (SCTP).
	lab.AddAddress(b, "10.99.2.3/24")
	lab.AddAddress(b, "fd00:10:99:2::3/64")
	var ports []server.Port
	for _, proto := range []corev1.Protocol{"TCP", "UDP", "SCTP"} {
		ports = append(ports, server.Port{Port: 80, Protocol: proto})
	}
	serveIn(t, lab, "y/b", "y/b", ports...)

	type want struct {
		outcome matrix.Outcome
		peer    string
		detail  string
	}
	type testCase struct {
		probe matrix.Probe
		want  want
	}
	cases := map[string]testCase{}
	for _, host := range []string{"10.99.2.2", "10.99.2.3", "fd00:10:99:2::2", "fd00:10:99:2::3"} {
		for _, proto := range []corev1.Protocol{"TCP", "UDP", "SCTP"} {
			peer := "y/b/serve-80-" + strings.ToLower(string(proto))
			cases[host+" "+string(proto)+" expected"] = testCase{
				matrix.Probe{Host: host, Port: 80, Protocol: proto, Expect: "y/b"}, want{matrix.Connected, peer, ""}}
			cases[host+" "+string(proto)+" other expected"] = testCase{
				matrix.Probe{Host: host, Port: 80, Protocol: proto, Expect: "y/c"}, want{matrix.WrongPeer, peer, "expected y/c"}}
			cases[host+" "+string(proto)+" closed port"] = testCase{
				matrix.Probe{Host: host, Port: 81, Protocol: proto, Expect: "y/b"}, want{matrix.Refused, "", ""}}
		}
		cases[host+" ICMP"] = testCase{matrix.Probe{Host: host, Protocol: matrix.ProtocolICMP}, want{matrix.Connected, host, ""}}
	}
	cases["silent address"] = testCase{matrix.Probe{Host: "10.99.2.99", Port: 80, Protocol: "UDP"}, want{matrix.Timeout, "", "no answer"}}
	cases["silent address SCTP"] = testCase{matrix.Probe{Host: "10.99.2.99", Port: 80, Protocol: "SCTP"},
		want{matrix.Timeout, "", "no answer before the probe timeout: the SCTP association stalled in COOKIE-WAIT (3 packets sent, 0 received)"}}
	cases["no route"] = testCase{matrix.Probe{Host: "192.0.2.10", Port: 80, Protocol: "TCP"}, want{matrix.Error, "", "unreachable"}}
	cases["bad protocol"] = testCase{matrix.Probe{Host: "10.99.2.2", Port: 80, Protocol: "QUIC"}, want{matrix.Error, "", "unknown protocol"}}
	cases["bad port"] = testCase{matrix.Probe{Host: "10.99.2.2", Port: 0, Protocol: "TCP"}, want{matrix.Error, "", "out of range"}}

	names := make([]string, 0, len(cases))
	probes := make([]matrix.Probe, 0, len(cases))
	for name, c := range cases {
		c.probe.ID = len(probes)
		c.probe.TimeoutMillis = 1000
		names = append(names, name)
		probes = append(probes, c.probe)
	}
	for _, r := range probeFrom(t, lab, "x/a", probes...) {
		name := names[r.ID]
		w := cases[name].want
		if r.Outcome != w.outcome || r.Peer != w.peer || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("%s: %s peer %q detail %q; want %s peer %q detail containing %q", name, r.Outcome, r.Peer, r.Detail, w.outcome, w.peer, w.detail)
		}
		if r.LatencyMicros <= 0 {
			t.Errorf("%s: latency %d", name, r.LatencyMicros)
		}
	}
}

func TestProberRequiresATimeout(t *testing.T) {
	r := prober.New(sctp.Auto).Run(context.Background(), matrix.Probe{ID: 3, Host: "127.0.0.1", Port: 1, Protocol: "TCP"})
	if r.ID != 3 || r.Outcome != matrix.Error {
		t.Errorf("result = %+v", r)
	}
}

func TestListeningOnTheLoopback(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a")
	node := lab.Node("x/a")
	var all []matrix.PortProtocol
	var ports []server.Port
	for _, proto := range []corev1.Protocol{"TCP", "UDP", "SCTP"} {
		all = append(all, matrix.PortProtocol{Port: 80, Protocol: proto})
		ports = append(ports, server.Port{Port: 80, Protocol: proto})
	}
	listening := func(pps ...matrix.PortProtocol) error {
		var err error
		lab.Do(node, func() {
			p := prober.New(sctp.Userspace)
			err = p.Listening(context.Background(), "127.0.0.1", pps, 500*time.Millisecond)
			if cerr := p.Close(); cerr != nil {
				t.Errorf("closing the prober: %v", cerr)
			}
		})
		return err
	}
	if err := listening(all...); err == nil || !strings.Contains(err.Error(), "3 of 3 ports do not answer on 127.0.0.1") {
		t.Errorf("before serving: %v", err)
	}
	serveIn(t, lab, "x/a", "x/a", ports...)
	if err := listening(all...); err != nil {
		t.Errorf("while serving: %v", err)
	}
	if err := listening(append(all, matrix.PortProtocol{Port: 81, Protocol: "SCTP"})...); err == nil || !strings.Contains(err.Error(), "1 of 4 ports do not answer on 127.0.0.1: 81/SCTP: refused") {
		t.Errorf("with a port nobody serves: %v", err)
	}
}

// A UDP probe through a DNAT (as to a Service's ClusterIP) connects: the
// reply comes back from the address the probe was sent to, un-NATed by
// conntrack, so reading on an unconnected socket changes nothing there.
func TestUDPThroughDNAT(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	serveIn(t, lab, "y/b", "y/b", server.Port{Port: 80, Protocol: "UDP"})
	lab.Nft(lab.Router, `table ip npc_test_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.99.2.99 udp dport 8080 dnat to 10.99.2.2:80
	}
}`)
	r := probeFrom(t, lab, "x/a", matrix.Probe{Host: "10.99.2.99", Port: 8080, Protocol: "UDP", Expect: "y/b", TimeoutMillis: 1000})[0]
	if r.Outcome != matrix.Connected || r.Peer != "y/b/serve-80-udp" {
		t.Errorf("result %+v; want connected to y/b/serve-80-udp", r)
	}
}
