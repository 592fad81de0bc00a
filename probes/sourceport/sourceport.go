// Package sourceport chooses the source ports of connectionless probes (UDP
// datagrams, userspace SCTP associations) so that no probe shares the
// 5-tuple of a recent probe to the same destination, whichever process sent
// that one.
//
// A probe on the 5-tuple of a recent one is, to conntrack, the same flow. A
// CNI that accepts packets of established flows before it looks at policies
// (most do, for example kube-router) then lets a probe that the policies
// deny through, because an earlier probe on that tuple was allowed before
// the policy took effect; and an SCTP association started on the tuple of
// one conntrack still tracks, with other verification tags, can have its
// replies judged as new packets and dropped. Conntrack remembers a flow for
// a while after its last packet (UDP: 120 s once answered; SCTP: 10 s after
// a graceful shutdown, 210 s while established).
//
// Neither random ports nor ports taken in turn by each process are enough:
// the suites run one short probe process per source pod and round, so
// thousands of processes probe the same destinations, in the same order,
// within those lifetimes. A random port draws a recent one's by chance; two
// processes whose turns start close together reuse each other's ports
// destination by destination.
//
// So the port depends on the clock and on the destination: a destination's
// port advances by one every tick, from an offset hashed from the
// destination (so that concurrent probes to different destinations do not
// want the same port). Two probes to one destination from one source get
// the same port only if they start within the same tick, or one wrap of the
// range apart, which is longer than conntrack keeps any of these flows. A
// process that probes one destination more than once per tick takes the
// following ports.
package sourceport

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// The range ports are taken from: the kernel's default ephemeral range.
const (
	firstPort = 32768
	lastPort  = 60999
	size      = lastPort - firstPort + 1
)

// tick is how long a destination keeps its port; the port comes back to
// the destination after wrap (226 s).
const (
	tick = 8 * time.Millisecond
	wrap = size * tick
)

// maxAttempts bounds the ports tried for one probe.
const maxAttempts = 64

// Key names what a probe is sent to: its protocol and destination.
type Key struct {
	Protocol string // "UDP" or "SCTP"
	Dest     netip.AddrPort
}

// Chooser chooses source ports. It is safe for concurrent use.
type Chooser struct {
	now func() time.Time

	mu   sync.Mutex
	last map[Key]int // the last port handed out per key
}

// New returns a chooser on the machine's clock.
func New() *Chooser {
	return withClock(time.Now)
}

// withClock returns a chooser on the clock now (tests pin it).
func withClock(now func() time.Time) *Chooser {
	return &Chooser{now: now, last: map[Key]int{}}
}

// clockPort returns the port the clock gives k at t.
func clockPort(k Key, t time.Time) int {
	h := fnv.New32a()
	b, _ := k.Dest.MarshalBinary() // never fails
	h.Write([]byte(k.Protocol))
	h.Write(b)
	ticks := uint64(t.UnixNano() / int64(tick))
	return firstPort + int((ticks+uint64(h.Sum32()))%size)
}

// take returns k's next port: the clock's, unless this chooser already
// handed that one (or a later one) to k, then the one after the last.
func (c *Chooser) take(k Key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	port := clockPort(k, c.now())
	if last, ok := c.last[k]; ok {
		// ahead is how far the clock's port is past the last one, in turn.
		if ahead := (port - last + size) % size; ahead == 0 || ahead > size/2 {
			port = firstPort + (last-firstPort+1)%size
		}
	}
	c.last[k] = port
	return port
}

// Bind calls bind with k's next ports until one is not in use (bind returns
// an error wrapping EADDRINUSE for a port in use) and returns what that
// call returned.
func Bind[T any](c *Chooser, k Key, bind func(port int) (T, error)) (T, error) {
	var zero T
	var err error
	for range maxAttempts {
		var v T
		v, err = bind(c.take(k))
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return zero, err
		}
	}
	return zero, fmt.Errorf("no free source port for %s %s in %d tries: %w", k.Protocol, k.Dest, maxAttempts, err)
}
