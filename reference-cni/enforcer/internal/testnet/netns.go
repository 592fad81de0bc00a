// Package testnet builds throwaway networks of network namespaces for the
// enforcer's integration tests, shaped like the reference CNI's: node
// namespaces joined by an underlay bridge, pods on routed point-to-point
// veths (pod eth0 /32 and /128, a host route per pod, no bridge), and external
// hosts behind node 1. Its namespaces come from internal/netns/netnstest:
// each is named npc-t<pid>-..., and everything is removed when the test
// ends, whatever its outcome. The tests
// using it need root; New skips the test otherwise.
package testnet

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
)

// Net creates namespaces for one test.
type Net struct {
	t      testing.TB
	prefix string
}

// New returns a Net for t, or skips t when not running as root.
func New(t testing.TB) *Net {
	t.Helper()
	netnstest.RequireRoot(t)
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	return &Net{t: t, prefix: fmt.Sprintf("%06x-", h.Sum32()&0xffffff)}
}

// Namespace creates the namespace npc-t<pid>-<hash>-<suffix> with its
// loopback up and IPv6 duplicate address detection off (so that link-local
// addresses work at once), and deletes it when the test ends.
func (n *Net) Namespace(suffix string) *netnstest.Netns {
	n.t.Helper()
	ns := netnstest.New(n.t, n.prefix+suffix)
	ns.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	ns.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	return ns
}

// linkName returns an interface name of at most 15 bytes: prefix and a hash
// of key.
func linkName(prefix, key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	name := fmt.Sprintf("%s%016x", prefix, h.Sum64())
	return name[:15]
}
