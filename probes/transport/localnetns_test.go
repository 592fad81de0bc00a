package transport_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/internal/netlab"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// probeBinary is the netpolcheck-probe built once for this test binary (by
// TestMain, when running as root).
var probeBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "netpolcheck-probe-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if probeBinary, err = netlab.BuildProbe(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

var (
	servedPorts = []int32{80, 81}
	protocols   = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
)

// target is what one probe of a test matrix aims at.
type target struct {
	dst      string
	addr     netip.Addr
	port     int32
	protocol corev1.Protocol
}

func (t target) String() string {
	return fmt.Sprintf("%s %s %s", t.dst, t.protocol, netip.AddrPortFrom(t.addr, uint16(t.port)))
}

// observation is one probe's target and result.
type observation struct {
	src string
	target
	result matrix.Result
}

// matrixPlan lists the probes each source sends.
type matrixPlan struct {
	timeout  time.Duration
	families []func(*netlab.Node) netip.Addr
	ports    []int32
	icmp     bool
}

var (
	ipv4 = func(n *netlab.Node) netip.Addr { return n.IPv4 }
	ipv6 = func(n *netlab.Node) netip.Addr { return n.IPv6 }
)

func (p matrixPlan) targets(lab *netlab.Lab, dsts []string) []target {
	var out []target
	for _, dst := range dsts {
		n := lab.Node(dst)
		for _, family := range p.families {
			addr := family(n)
			for _, proto := range protocols {
				for _, port := range p.ports {
					out = append(out, target{dst: dst, addr: addr, port: port, protocol: proto})
				}
			}
			if p.icmp {
				out = append(out, target{dst: dst, addr: addr, protocol: matrix.ProtocolICMP})
			}
		}
	}
	return out
}

// runMatrix probes from every source to every destination through the
// local netns transport, all sources at once (one batch process each), and
// returns every observation and the wall time.
func runMatrix(t testing.TB, lab *netlab.Lab, tr matrix.Transport, srcs, dsts []string, plan matrixPlan) ([]observation, time.Duration) {
	t.Helper()
	targets := plan.targets(lab, dsts)
	var (
		mu  sync.Mutex
		obs []observation
		wg  sync.WaitGroup
	)
	start := time.Now()
	for _, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probes := make([]matrix.Probe, len(targets))
			for i, tg := range targets {
				probes[i] = matrix.Probe{ID: i, Host: tg.addr.String(), Port: tg.port, Protocol: tg.protocol,
					Expect: tg.dst, TimeoutMillis: plan.timeout.Milliseconds()}
			}
			results, err := tr.RunBatch(context.Background(), lab.Endpoint(src), probes)
			if err != nil {
				t.Errorf("batch from %s: %v", src, err)
				return
			}
			if len(results) != len(probes) {
				t.Errorf("batch from %s: %d results for %d probes", src, len(results), len(probes))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range results {
				obs = append(obs, observation{src: src, target: targets[r.ID], result: r})
			}
		}()
	}
	wg.Wait()
	return obs, time.Since(start)
}

// expect checks every observation against want, which returns the expected
// outcome and a regexp the peer must match ("" for no peer).
func expect(t testing.TB, obs []observation, want func(observation) (matrix.Outcome, string)) {
	t.Helper()
	bad := 0
	for _, o := range obs {
		outcome, peer := want(o)
		okPeer := peer == "" && o.result.Peer == "" || peer != "" && regexp.MustCompile("^"+peer+"$").MatchString(o.result.Peer)
		if o.result.Outcome != outcome || !okPeer {
			bad++
			if bad <= 20 {
				t.Errorf("%s -> %s: %s peer %q (%s), want %s peer %q", o.src, o.target, o.result.Outcome, o.result.Peer, o.result.Detail, outcome, peer)
			}
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more wrong cells", bad-20)
	}
	if len(obs) == 0 {
		t.Error("no observations")
	}
}

// containerOf is the upstream container name serving a target.
func containerOf(tg target) string {
	return fmt.Sprintf("serve-%d-%s", tg.port, strings.ToLower(string(tg.protocol)))
}

// newServedLab builds x/a, y/b, z/c. x/a and y/b run one server process for
// all six ports; z/c runs one process per container, like a pod with one
// container per port, so SCTP servers sharing a namespace are exercised.
func newServedLab(t *testing.T, extra ...string) *netlab.Lab {
	t.Helper()
	netnstest.RequireRoot(t)
	lab := netlab.New(t, append([]string{"x/a", "y/b", "z/c"}, extra...)...)
	lab.Serve(probeBinary, "x/a", "x/a", "--port", "80,81/TCP,UDP,SCTP")
	lab.Serve(probeBinary, "y/b", "y/b", "--port", "80,81/TCP,UDP,SCTP")
	for _, proto := range protocols {
		for _, port := range servedPorts {
			lab.Serve(probeBinary, "z/c", "z/c", "--port", fmt.Sprintf("%d/%s", port, proto))
		}
	}
	return lab
}

func localTransport(lab *netlab.Lab) *transport.LocalNetns {
	return &transport.LocalNetns{Binary: probeBinary, NetnsPath: lab.NetnsPath}
}

var pods = []string{"x/a", "y/b", "z/c"}

func TestLocalNetnsAllAllowed(t *testing.T) {
	lab := newServedLab(t)
	// Count SCTP packets the router's conntrack finds invalid or established.
	lab.Nft(lab.Router, netlab.Ruleset("forward", "accept",
		"meta l4proto sctp ct state invalid counter",
		"meta l4proto sctp ct state established counter"))
	plan := matrixPlan{timeout: 2 * time.Second, families: []func(*netlab.Node) netip.Addr{ipv4, ipv6}, ports: []int32{80, 81, 82}, icmp: true}
	obs, _ := runMatrix(t, lab, localTransport(lab), pods, pods, plan)
	expect(t, obs, func(o observation) (matrix.Outcome, string) {
		switch {
		case o.protocol == matrix.ProtocolICMP:
			return matrix.Connected, regexp.QuoteMeta(o.addr.String())
		case o.port == 82: // served by nobody: RST, ICMP port unreachable, ABORT
			return matrix.Refused, ""
		}
		return matrix.Connected, regexp.QuoteMeta(o.dst + "/" + containerOf(o.target))
	})
	counters := regexp.MustCompile(`ct state (\w+) counter packets (\d+)`).FindAllStringSubmatch(lab.NftList(lab.Router), -1)
	seen := map[string]int{}
	for _, c := range counters {
		seen[c[1]], _ = strconv.Atoi(c[2])
	}
	if seen["invalid"] != 0 || seen["established"] == 0 {
		t.Errorf("router conntrack SCTP packets: %v; want none invalid and some established", seen)
	}
}

func TestLocalNetnsAllDenied(t *testing.T) {
	lab := newServedLab(t)
	lab.DropAll()
	timeout := 500 * time.Millisecond
	plan := matrixPlan{timeout: timeout, families: []func(*netlab.Node) netip.Addr{ipv4, ipv6}, ports: servedPorts, icmp: true}
	obs, wall := runMatrix(t, lab, localTransport(lab), pods, pods, plan)
	expect(t, obs, func(observation) (matrix.Outcome, string) { return matrix.Timeout, "" })
	for _, o := range obs {
		if lat := o.result.Latency(); lat < timeout || lat > timeout+300*time.Millisecond {
			t.Errorf("%s -> %s: timed out after %v, want about %v", o.src, o.target, lat, timeout)
		}
	}
	if wall > 3*timeout {
		t.Errorf("denied matrix of %d probes took %v, want about one probe timeout (%v)", len(obs), wall, timeout)
	}
}

func TestLocalNetnsRejected(t *testing.T) {
	lab := newServedLab(t)
	lab.Nft(lab.Router, netlab.Ruleset("forward", "accept", "reject with icmpx admin-prohibited"))
	plan := matrixPlan{timeout: 2 * time.Second, families: []func(*netlab.Node) netip.Addr{ipv4, ipv6}, ports: servedPorts, icmp: true}
	obs, _ := runMatrix(t, lab, localTransport(lab), pods, pods, plan)
	expect(t, obs, func(o observation) (matrix.Outcome, string) {
		switch {
		case o.src != o.dst: // through the router: ICMP administratively prohibited
			return matrix.Refused, ""
		case o.protocol == matrix.ProtocolICMP:
			return matrix.Connected, regexp.QuoteMeta(o.addr.String())
		}
		return matrix.Connected, regexp.QuoteMeta(o.dst + "/" + containerOf(o.target))
	})
}

// nftables port rules apply to the probes' packets like to kernel sockets'.
func TestLocalNetnsPortRules(t *testing.T) {
	lab := newServedLab(t)
	lab.Nft(lab.Router, netlab.Ruleset("forward", "accept",
		"sctp dport 81 drop",
		"udp dport 81 drop",
		"tcp dport 81 reject with tcp reset"))
	plan := matrixPlan{timeout: time.Second, families: []func(*netlab.Node) netip.Addr{ipv4, ipv6}, ports: servedPorts}
	obs, _ := runMatrix(t, lab, localTransport(lab), []string{"x/a"}, []string{"y/b", "z/c"}, plan)
	expect(t, obs, func(o observation) (matrix.Outcome, string) {
		switch {
		case o.port == 80:
			return matrix.Connected, regexp.QuoteMeta(o.dst + "/" + containerOf(o.target))
		case o.protocol == corev1.ProtocolTCP:
			return matrix.Refused, ""
		}
		return matrix.Timeout, ""
	})
}

func TestLocalNetnsWrongPeer(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "w/d")
	lab.Serve(probeBinary, "w/d", "w/impostor", "--port", "80/TCP,UDP,SCTP")
	plan := matrixPlan{timeout: 2 * time.Second, families: []func(*netlab.Node) netip.Addr{ipv4, ipv6}, ports: []int32{80}}
	obs, _ := runMatrix(t, lab, localTransport(lab), []string{"x/a"}, []string{"w/d"}, plan)
	expect(t, obs, func(o observation) (matrix.Outcome, string) {
		return matrix.WrongPeer, regexp.QuoteMeta("w/impostor/" + containerOf(o.target))
	})
}

func TestLocalNetnsUnknownSource(t *testing.T) {
	tr := &transport.LocalNetns{Binary: "/nonexistent", NetnsPath: func(ep matrix.Endpoint) (string, error) {
		return "", fmt.Errorf("no namespace for %s", ep.Name)
	}}
	if _, err := tr.RunBatch(context.Background(), matrix.Endpoint{Name: "x/a"}, []matrix.Probe{{ID: 1}}); err == nil {
		t.Error("RunBatch succeeded without a namespace")
	}
}

// Cancelling the context stops the agent (SIGTERM): in-flight probes end
// at once instead of waiting out their timeouts.
func TestLocalNetnsCancel(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	lab.DropAll()
	probes := []matrix.Probe{
		{ID: 1, Host: lab.Node("y/b").IPv4.String(), Port: 80, Protocol: corev1.ProtocolTCP, TimeoutMillis: 30000},
		{ID: 2, Host: lab.Node("y/b").IPv4.String(), Port: 80, Protocol: corev1.ProtocolSCTP, TimeoutMillis: 30000},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	results, err := localTransport(lab).RunBatch(ctx, lab.Endpoint("x/a"), probes)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancelled batch took %v", elapsed)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Outcome == matrix.Connected {
			t.Errorf("probe %d connected through a drop-all lab", r.ID)
		}
	}
}
