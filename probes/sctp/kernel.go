package sctp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelSupported reports whether the kernel offers SCTP sockets.
func kernelSupported() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, protoSCTP)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// maxKernelMessage bounds what a kernel-socket peer reads as one message.
const maxKernelMessage = 65536

// kernelServeTimeout bounds how long a server waits for a connected client's
// request.
const kernelServeTimeout = 5 * time.Second

// openKernelSocket opens a non-blocking one-to-one (SOCK_STREAM) SCTP socket
// of family, polled by the Go runtime.
func openKernelSocket(family int) (*os.File, syscall.RawConn, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protoSCTP)
	if err != nil {
		return nil, nil, fmt.Errorf("opening SCTP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "sctp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("SCTP socket: %w", err)
	}
	return f, rc, nil
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Unmap().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// kernelExchange connects with a kernel SCTP socket, sends request as one
// message and reads one message back. Closing the socket shuts the
// association down gracefully.
func (s *Stack) kernelExchange(ctx context.Context, remote netip.AddrPort, request []byte) ([]byte, error) {
	family, sa := sockaddr(remote)
	var f *os.File
	var rc syscall.RawConn
	var err error
	s.ns.Run(func() { f, rc, err = openKernelSocket(family) })
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = f.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Now()) })
	defer stop()

	var connErr error
	err = rc.Control(func(fd uintptr) { connErr = unix.Connect(int(fd), sa) })
	if err == nil && connErr != nil && !errors.Is(connErr, unix.EINPROGRESS) {
		return nil, kernelError(ctx, connErr)
	}
	if err == nil {
		err = rc.Write(func(fd uintptr) bool {
			v, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case e != nil:
				connErr = e
			case v != 0:
				connErr = syscall.Errno(v)
			default:
				if _, e := unix.Getpeername(int(fd)); errors.Is(e, unix.ENOTCONN) {
					return false // still connecting
				}
				connErr = nil
			}
			return true
		})
	}
	if err != nil {
		return nil, kernelError(ctx, err)
	}
	if connErr != nil {
		return nil, kernelError(ctx, connErr)
	}
	if _, err := f.Write(request); err != nil {
		return nil, kernelError(ctx, err)
	}
	buf := make([]byte, maxKernelMessage)
	n, err := f.Read(buf)
	if err != nil {
		return nil, kernelError(ctx, err)
	}
	return buf[:n], nil
}

// kernelError maps socket errors to the stack's: refusals wrap ErrRefused,
// deadline expiry becomes ctx's error.
func kernelError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return context.DeadlineExceeded
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return fmt.Errorf("kernel SCTP: %w", err)
}

// kernelListener serves one port on kernel SCTP sockets.
type kernelListener struct {
	files []*os.File
	wg    sync.WaitGroup
}

// kernelListen listens on port on every address, IPv4 and (where the kernel
// has it) IPv6.
func (s *Stack) kernelListen(port uint16, handler Handler) (io.Closer, error) {
	l := &kernelListener{}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		var f *os.File
		var rc syscall.RawConn
		var err error
		s.ns.Run(func() { f, rc, err = listenKernel(family, port) })
		if err != nil {
			if family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue
			}
			l.Close()
			return nil, err
		}
		l.files = append(l.files, f)
		l.wg.Add(1)
		go l.acceptLoop(rc, handler)
	}
	return l, nil
}

func listenKernel(family int, port uint16) (*os.File, syscall.RawConn, error) {
	f, rc, err := openKernelSocket(family)
	if err != nil {
		return nil, nil, err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Port: int(port)}
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		if opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); opErr != nil {
			return
		}
		if family == unix.AF_INET6 {
			if opErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); opErr != nil {
				return
			}
		}
		if opErr = unix.Bind(int(fd), sa); opErr != nil {
			return
		}
		opErr = unix.Listen(int(fd), unix.SOMAXCONN)
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("listening on SCTP port %d: %w", port, err)
	}
	return f, rc, nil
}

func (l *kernelListener) acceptLoop(rc syscall.RawConn, handler Handler) {
	defer l.wg.Done()
	for {
		var nfd int
		var acceptErr error
		err := rc.Read(func(fd uintptr) bool {
			nfd, _, acceptErr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return !errors.Is(acceptErr, unix.EAGAIN)
		})
		if err != nil {
			return // listener closed
		}
		if acceptErr != nil {
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			serveKernelConn(os.NewFile(uintptr(nfd), "sctp-conn"), handler)
		}()
	}
}

func serveKernelConn(f *os.File, handler Handler) {
	defer f.Close()
	_ = f.SetDeadline(time.Now().Add(kernelServeTimeout))
	buf := make([]byte, maxKernelMessage)
	n, err := f.Read(buf)
	if err != nil {
		return
	}
	_, _ = f.Write(handler(buf[:n]))
	// Wait for the client to shut down first, so the server side does not
	// end the association before the answer is acknowledged.
	_, _ = f.Read(buf)
}

// Close stops listening and waits for the connections being served.
func (l *kernelListener) Close() error {
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	l.wg.Wait()
	return errors.Join(errs...)
}
