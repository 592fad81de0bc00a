// Package netnstest gives integration tests named network namespaces that
// delete themselves when the test ends, pass or fail, and the ip(8) and
// sysctl steps that join them into a test's topology. Every lab of the
// module (probes/internal/netlab, reference-cni/enforcer/internal/testnet,
// reference-cni/plugin/cnitest) builds its own topology from these. Tests
// using it need root: see RequireRoot.
package netnstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netpolcheck/netpolcheck/internal/netns"
)

// RequireRoot skips the test unless it runs as root, which network
// namespaces need.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root for network namespaces")
	}
}

// Netns is a named network namespace of one test.
type Netns struct {
	tb testing.TB
	// Name is the namespace's name, for `ip -n NAME`.
	Name string
	// Path is its bind mount, /run/netns/NAME.
	Path string
}

// New creates the namespace npc-t<pid>-<suffix> (the pid tells apart what a
// killed run left) with its loopback up, and deletes it when the test ends,
// unless the test deleted it already. Deleting a namespace deletes its links
// too.
func New(tb testing.TB, suffix string) *Netns {
	tb.Helper()
	name := fmt.Sprintf("npc-t%d-%s", os.Getpid(), suffix)
	ns := &Netns{tb: tb, Name: name, Path: netns.Path(name)}
	if err := netns.Create(ns.Path); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := netns.Delete(ns.Path); err != nil {
			tb.Error(err)
		}
	})
	return ns
}

// IP runs `ip -n NAME args...` and fails the test if it fails.
func (ns *Netns) IP(args ...string) {
	ns.tb.Helper()
	IP(ns.tb, append([]string{"-n", ns.Name}, args...)...)
}

// Sysctl sets a sysctl inside the namespace (its net.* keys are per
// namespace) and fails the test if it cannot.
func (ns *Netns) Sysctl(key, value string) {
	ns.tb.Helper()
	if err := netns.Sysctl(ns.Path, key, value); err != nil {
		ns.tb.Fatal(err)
	}
}

// Do runs fn on a thread switched into the namespace: sockets it creates
// belong to the namespace.
func (ns *Netns) Do(fn func() error) error { return netns.Do(ns.Path, fn) }

// Handle returns a netlink handle working inside the namespace, closed when
// the test ends.
func (ns *Netns) Handle() *netlink.Handle {
	ns.tb.Helper()
	h, err := netns.Handle(ns.Path)
	if err != nil {
		ns.tb.Fatal(err)
	}
	ns.tb.Cleanup(h.Close)
	return h
}

// Exec runs a command with `ip netns exec` (which also gives it the
// namespace's /sys) and returns its combined output.
func (ns *Netns) Exec(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Veth joins two namespaces with a veth pair: link aLink in a, its peer
// bLink in b. Both start down.
func Veth(a *Netns, aLink string, b *Netns, bLink string) {
	a.tb.Helper()
	a.IP("link", "add", aLink, "type", "veth", "peer", "name", bLink, "netns", b.Name)
}

// IP runs the ip(8) command in the test's own namespace and fails the test
// if it fails.
func IP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
