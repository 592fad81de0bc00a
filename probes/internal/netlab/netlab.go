// Package netlab builds throw-away network topologies for the probe
// packages' integration tests: a router namespace in the middle and one
// namespace per endpoint, each joined to the router by a veth pair, with
// IPv4 addresses from 10.99.0.0/16 and IPv6 from fd00:10:99::/48. Its
// namespaces come from internal/netns/netnstest: each is named
// npc-t<pid>-<random>-..., and everything (servers, namespaces with their
// links and nftables tables) is removed by the test's cleanup, also when the
// test fails. It needs root (netnstest.RequireRoot).
package netlab

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/gobuild"
	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// BuildProbe builds cmd/netpolcheck-probe statically into dir and returns
// the binary's path.
func BuildProbe(dir string) (string, error) {
	if err := gobuild.Commands(dir, "github.com/netpolcheck/netpolcheck/cmd/netpolcheck-probe"); err != nil {
		return "", err
	}
	return filepath.Join(dir, "netpolcheck-probe"), nil
}

// Node is one endpoint's namespace.
type Node struct {
	// Endpoint is the endpoint name ("x/a").
	Endpoint string
	// Netns is the namespace's name; NetnsPath its bind mount.
	Netns     string
	NetnsPath string
	IPv4      netip.Addr
	IPv6      netip.Addr
	ns        *netnstest.Netns
}

// Addrs returns the node's addresses, IPv4 first.
func (n *Node) Addrs() []netip.Addr { return []netip.Addr{n.IPv4, n.IPv6} }

// Lab is a router namespace and the endpoint namespaces around it.
type Lab struct {
	tb     testing.TB
	Router string
	Nodes  []*Node
	byName map[string]*Node
}

// New creates the router and one namespace per endpoint name. Node i
// (1-based) gets 10.99.i.2/24 and fd00:10:99:i::2/64; the router holds .1
// and ::1 of each subnet and forwards between them. Pod namespaces route
// only the lab's prefixes to the router: no default route, nothing that
// leads out of the lab.
func New(tb testing.TB, endpoints ...string) *Lab {
	tb.Helper()
	if len(endpoints) > 250 {
		tb.Fatalf("netlab: %d endpoints, at most 250", len(endpoints))
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	prefix := hex.EncodeToString(suffix[:])
	router := newNetns(tb, prefix+"-router")
	router.Sysctl("net.ipv4.ip_forward", "1")
	router.Sysctl("net.ipv6.conf.all.forwarding", "1")
	lab := &Lab{tb: tb, Router: router.Name, byName: map[string]*Node{}}
	for i, name := range endpoints {
		idx := i + 1
		ns := newNetns(tb, fmt.Sprintf("%s-%d", prefix, idx))
		n := &Node{
			Endpoint:  name,
			Netns:     ns.Name,
			NetnsPath: ns.Path,
			IPv4:      netip.AddrFrom4([4]byte{10, 99, byte(idx), 2}),
			IPv6:      netip.MustParseAddr(fmt.Sprintf("fd00:10:99:%d::2", idx)),
			ns:        ns,
		}
		routerSide := fmt.Sprintf("npcr%d", idx)
		netnstest.Veth(router, routerSide, ns, "eth0")
		router.IP("addr", "add", fmt.Sprintf("10.99.%d.1/24", idx), "dev", routerSide)
		router.IP("-6", "addr", "add", fmt.Sprintf("fd00:10:99:%d::1/64", idx), "dev", routerSide, "nodad")
		router.IP("link", "set", routerSide, "up")
		ns.IP("addr", "add", n.IPv4.String()+"/24", "dev", "eth0")
		ns.IP("-6", "addr", "add", n.IPv6.String()+"/64", "dev", "eth0", "nodad")
		ns.IP("link", "set", "eth0", "up")
		ns.IP("route", "add", "10.99.0.0/16", "via", fmt.Sprintf("10.99.%d.1", idx))
		ns.IP("-6", "route", "add", "fd00:10:99::/48", "via", fmt.Sprintf("fd00:10:99:%d::1", idx))
		lab.Nodes = append(lab.Nodes, n)
		lab.byName[name] = n
	}
	return lab
}

// newNetns creates a namespace with loopback up, IPv6 duplicate address
// detection off (addresses are usable at once) and no ICMP rate limits, and
// deletes it on cleanup.
func newNetns(tb testing.TB, suffix string) *netnstest.Netns {
	tb.Helper()
	ns := netnstest.New(tb, suffix)
	// ICMP errors are not rate-limited, so every rejected probe is told so
	// (the kernel's default limits would turn some refusals into timeouts).
	for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad",
		"net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit"} {
		ns.Sysctl(key, "0")
	}
	ns.Sysctl("net.ipv4.icmp_msgs_per_sec", "1000000")
	ns.Sysctl("net.ipv4.icmp_msgs_burst", "1000000")
	return ns
}

// AddAddress adds an extra address (CIDR notation) to a node's interface.
func (l *Lab) AddAddress(n *Node, prefix string) {
	l.tb.Helper()
	p := netip.MustParsePrefix(prefix)
	args := []string{"addr", "add", prefix, "dev", "eth0"}
	if p.Addr().Is6() {
		args = append([]string{"-6"}, append(args, "nodad")...)
	}
	n.ns.IP(args...)
}

// Node returns the node of an endpoint name.
func (l *Lab) Node(endpoint string) *Node {
	l.tb.Helper()
	n, ok := l.byName[endpoint]
	if !ok {
		l.tb.Fatalf("netlab: no node %q", endpoint)
	}
	return n
}

// Endpoint returns the matrix endpoint of a node.
func (l *Lab) Endpoint(endpoint string) matrix.Endpoint {
	n := l.Node(endpoint)
	ns, pod, _ := strings.Cut(endpoint, "/")
	return matrix.Endpoint{Name: endpoint, Namespace: ns, Pod: pod, IPs: n.Addrs()}
}

// NetnsPath maps an endpoint to its namespace (for transport.LocalNetns).
func (l *Lab) NetnsPath(ep matrix.Endpoint) (string, error) {
	n, ok := l.byName[ep.Name]
	if !ok {
		return "", fmt.Errorf("netlab: no node %q", ep.Name)
	}
	return n.NetnsPath, nil
}

// Do runs fn on a thread switched into the node's namespace, so sockets fn
// creates belong there; the thread is switched back afterwards.
func (l *Lab) Do(n *Node, fn func()) {
	l.tb.Helper()
	if err := n.ns.Do(func() error { fn(); return nil }); err != nil {
		l.tb.Fatal(err)
	}
}

// Nft loads an nftables ruleset into a namespace. Tables go away with the
// namespace.
func (l *Lab) Nft(netns, ruleset string) {
	l.tb.Helper()
	cmd := exec.Command("ip", "netns", "exec", netns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.tb.Fatalf("nft in %s: %v: %s\n%s", netns, err, out, ruleset)
	}
}

// NftList returns `nft list ruleset` of a namespace.
func (l *Lab) NftList(netns string) string {
	l.tb.Helper()
	out, err := exec.Command("ip", "netns", "exec", netns, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		l.tb.Fatalf("nft list in %s: %v: %s", netns, err, out)
	}
	return string(out)
}

// Ruleset returns an nftables table npc_test with one filter chain on hook
// (forward, input, ...) with the given policy and rules.
func Ruleset(hook, policy string, rules ...string) string {
	return fmt.Sprintf("table inet npc_test {\n\tchain %s {\n\t\ttype filter hook %s priority 0; policy %s;\n%s\t}\n}\n",
		hook, hook, policy, indentRules(rules))
}

func indentRules(rules []string) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString("\t\t" + r + "\n")
	}
	return b.String()
}

// DropAll drops everything: forwarded packets in the router and every
// packet delivered to an endpoint namespace (loopback included).
func (l *Lab) DropAll() {
	l.tb.Helper()
	l.Nft(l.Router, Ruleset("forward", "drop"))
	for _, n := range l.Nodes {
		l.Nft(n.Netns, Ruleset("input", "drop"))
	}
}

// Serve starts `binary serve --identity IDENTITY args...` in the endpoint's
// namespace, waits until it reports ready, and stops it (SIGTERM, then
// SIGKILL) on cleanup. Its standard error is logged if the test fails.
func (l *Lab) Serve(binary, endpoint, identity string, args ...string) {
	l.tb.Helper()
	n := l.Node(endpoint)
	cmd := exec.Command(binary, append([]string{"serve", "--identity", identity}, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		l.tb.Fatal(err)
	}
	if err := netns.Start(n.NetnsPath, cmd); err != nil {
		l.tb.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan bool, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		ok := scanner.Scan() && scanner.Text() == "ready"
		ready <- ok
		for scanner.Scan() {
		}
		exited <- cmd.Wait()
	}()
	l.tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				l.tb.Errorf("server %s in %s exited with %v: %s", identity, endpoint, err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			l.tb.Errorf("server %s in %s ignored SIGTERM for 5 s: %s", identity, endpoint, stderr.String())
		}
		if l.tb.Failed() {
			l.tb.Logf("server %s in %s logged:\n%s", identity, endpoint, stderr.String())
		}
	})
	select {
	case ok := <-ready:
		if !ok {
			l.tb.Fatalf("server %s in %s did not become ready: %s", identity, endpoint, stderr.String())
		}
	case <-time.After(10 * time.Second):
		l.tb.Fatalf("server %s in %s not ready after 10 s: %s", identity, endpoint, stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
