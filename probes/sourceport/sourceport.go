// Package sourceport hands out the source ports of connectionless probes
// (UDP datagrams, userspace SCTP associations) in turn instead of at random.
//
// A probe that drew the source port of a recent probe to the same
// destination would be, to conntrack, the same flow: a CNI that accepts
// packets of established flows before it looks at policies (most do, for
// example kube-router) would then let a probe that the policies deny
// through, because an earlier probe on that port was allowed before the
// policy took effect. Conntrack remembers a flow for seconds after its last
// packet (UDP: 30 s or more; SCTP: 10 s after a graceful shutdown), and a
// probing round sends thousands of probes, so random ports collide often
// enough to fail cases. In turn, a port comes back only after every other
// port of the range was used by the same sequence.
package sourceport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
)

// The range ports are taken from: the kernel's default ephemeral range.
const (
	firstPort = 32768
	lastPort  = 60999
)

// maxAttempts bounds the ports tried for one probe.
const maxAttempts = 64

// Sequence is a turn of source ports. It is safe for concurrent use.
type Sequence struct {
	mu   sync.Mutex
	next int
}

// New starts a sequence at a random port of the range, so that probers that
// follow one another (one per batch through kube exec) do not start on the
// same ports.
func New() *Sequence {
	return StartingAt(firstPort + rand.IntN(lastPort-firstPort+1))
}

// StartingAt starts a sequence at port (tests pin it).
func StartingAt(port int) *Sequence {
	return &Sequence{next: port}
}

// take returns the next port, wrapping around at the end of the range.
func (s *Sequence) take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	port := s.next
	s.next++
	if s.next > lastPort {
		s.next = firstPort
	}
	return port
}

// Bind calls bind with the sequence's next ports until one is not in use
// (bind returns an error wrapping EADDRINUSE for a port in use) and returns
// what that call returned.
func Bind[T any](s *Sequence, bind func(port int) (T, error)) (T, error) {
	var zero T
	var err error
	for range maxAttempts {
		var v T
		v, err = bind(s.take())
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return zero, err
		}
	}
	return zero, fmt.Errorf("no free source port in %d tries: %w", maxAttempts, err)
}
