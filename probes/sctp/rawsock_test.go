package sctp

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A raw socket gets a receive buffer large enough for a probe round's burst
// (the kernel reports twice what was set, for its bookkeeping).
func TestRawSocketReceiveBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for raw sockets")
	}
	sock, err := openRawSocket(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.close()
	var size int
	var optErr error
	if err := sock.conn.Control(func(fd uintptr) {
		size, optErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	if size < receiveBuffer {
		t.Errorf("receive buffer %d bytes, want at least %d", size, receiveBuffer)
	}
}
