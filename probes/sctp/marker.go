package sctp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Several probe processes may share a network namespace (one per container
// of a pod), and every one of them sees every SCTP packet on its raw socket.
// A process serving an SCTP port claims it by binding an abstract Unix
// socket named after the port; abstract Unix names are scoped to the network
// namespace, and the kernel releases them when the process dies. The others
// then leave that port's INITs alone instead of refusing them.

func markerName(port uint16) string { return fmt.Sprintf("@netpolcheck/sctp/%d", port) }

// portMarker is a claim on an SCTP port in the current network namespace.
type portMarker struct{ fd int }

// claimPort claims port in the calling thread's network namespace. It fails
// when another process (or this one) serves the port already.
func claimPort(port uint16) (*portMarker, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("claiming SCTP port %d: %w", port, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: markerName(port)}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("SCTP port %d is already served in this network namespace", port)
		}
		return nil, fmt.Errorf("claiming SCTP port %d: %w", port, err)
	}
	return &portMarker{fd: fd}, nil
}

func (m *portMarker) release() error { return unix.Close(m.fd) }

// portClaimed reports whether some process serves port in the calling
// thread's network namespace.
func portClaimed(port uint16) bool {
	m, err := claimPort(port)
	if err != nil {
		return true
	}
	_ = m.release()
	return false
}
