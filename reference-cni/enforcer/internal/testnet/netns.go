// Package testnet builds throwaway networks of network namespaces for the
// enforcer's integration tests, shaped like the reference CNI's: node
// namespaces joined by an underlay bridge, pods on routed point-to-point
// veths (pod eth0 /32 and /128, a host route per pod, no bridge), and external
// hosts behind node 1. Every namespace is named npc-t<pid>-..., and
// everything is removed when the test ends, whatever its outcome. The tests
// using it need root; New skips the test otherwise.
package testnet

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// Net creates namespaces for one test.
type Net struct {
	t      testing.TB
	prefix string
}

// New returns a Net for t, or skips t when not running as root.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	return &Net{t: t, prefix: fmt.Sprintf("npc-t%d-%06x-", os.Getpid(), h.Sum32()&0xffffff)}
}

// Netns is a named network namespace.
type Netns struct {
	net  *Net
	Name string
}

// Path returns the namespace's bind-mount path.
func (ns *Netns) Path() string { return "/run/netns/" + ns.Name }

// Namespace creates the namespace npc-t<pid>-<hash>-<suffix> with its
// loopback up and IPv6 duplicate address detection off (so that link-local
// addresses work at once), and deletes it when the test ends.
func (n *Net) Namespace(suffix string) *Netns {
	n.t.Helper()
	ns := &Netns{net: n, Name: n.prefix + suffix}
	_ = exec.Command("ip", "netns", "del", ns.Name).Run() // left over by a killed run
	n.IP("netns", "add", ns.Name)
	n.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			n.t.Errorf("deleting namespace %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.IP("link", "set", "lo", "up")
	ns.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	ns.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	return ns
}

// IP runs the ip command in the root namespace and fails the test on error.
func (n *Net) IP(args ...string) {
	n.t.Helper()
	run(n.t, "ip", args...)
}

// IP runs the ip command against the namespace.
func (ns *Netns) IP(args ...string) {
	ns.net.t.Helper()
	run(ns.net.t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// Exec runs a command inside the namespace and returns its output.
func (ns *Netns) Exec(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Sysctl sets a sysctl inside the namespace.
func (ns *Netns) Sysctl(key, value string) {
	ns.net.t.Helper()
	if out, err := ns.Exec("sysctl", "-q", "-w", key+"="+value); err != nil {
		ns.net.t.Fatalf("sysctl %s=%s in %s: %v: %s", key, value, ns.Name, err, out)
	}
}

// Do runs fn on a thread switched into the namespace: sockets it creates
// belong to the namespace.
func (ns *Netns) Do(fn func() error) error {
	return kubeclient.InNetns(ns.Path(), fn)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// linkName returns an interface name of at most 15 bytes: prefix and a hash
// of key.
func linkName(prefix, key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	name := fmt.Sprintf("%s%016x", prefix, h.Sum64())
	return name[:15]
}
