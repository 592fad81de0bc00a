// Package server is the answering side of the probe agent (`netpolcheck-probe
// serve`): it listens on TCP, UDP and SCTP ports on every IPv4 and IPv6
// address of its network namespace and answers each probe request (package
// wire) with its identity, the container name and the port and protocol
// that answered.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/wire"
)

// requestTimeout bounds how long a TCP connection may take to send its request.
const requestTimeout = 5 * time.Second

// Config says who the server is and what it serves.
type Config struct {
	// Identity is the endpoint name answers carry: "namespace/pod" for a pod,
	// the host's name for an external host.
	Identity string
	// Container is the container name reported for ports that name none;
	// when empty too, DefaultContainer's upstream-style name is used.
	Container string
	Ports     []Port
	// SCTPMode selects kernel or userspace SCTP (default: auto).
	SCTPMode sctp.Mode
	// Log receives one line per listener problem; nil discards.
	Log *slog.Logger
}

// Serve listens on every configured port, calls ready once all listen, and
// answers until ctx ends; then it closes the listeners and waits for the
// answers in progress.
func Serve(ctx context.Context, cfg Config, ready func()) error {
	if cfg.Identity == "" {
		return errors.New("serve: an identity is required")
	}
	if len(cfg.Ports) == 0 {
		return errors.New("serve: no ports to serve")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{identity: cfg.Identity, log: log}
	defer s.shutdown()

	seen := map[Port]bool{}
	for _, p := range cfg.Ports {
		if p.Container == "" {
			p.Container = cfg.Container
		}
		if p.Container == "" {
			p.Container = DefaultContainer(p.Port, p.Protocol)
		}
		key := Port{Port: p.Port, Protocol: p.Protocol}
		if seen[key] {
			return fmt.Errorf("serve: %s listed twice", key)
		}
		seen[key] = true
		if err := s.listen(p, cfg.SCTPMode); err != nil {
			return err
		}
	}
	ready()
	<-ctx.Done()
	return nil
}

// server holds the listeners of one Serve call.
type server struct {
	identity string
	log      *slog.Logger
	closers  []io.Closer
	stack    *sctp.Stack
	wg       sync.WaitGroup
}

func (s *server) listen(p Port, sctpMode sctp.Mode) error {
	switch p.Protocol {
	case corev1.ProtocolTCP:
		return s.eachFamily(p, func(network, addr string) error {
			l, err := net.Listen(network, addr)
			if err != nil {
				return err
			}
			s.closers = append(s.closers, l)
			s.wg.Add(1)
			go s.acceptTCP(l, p)
			return nil
		})
	case corev1.ProtocolUDP:
		return s.eachFamily(p, func(network, addr string) error {
			c, err := listenUDP(network, addr)
			if err != nil {
				return err
			}
			s.closers = append(s.closers, c)
			s.wg.Add(1)
			go s.serveUDP(c, p)
			return nil
		})
	case corev1.ProtocolSCTP:
		if s.stack == nil {
			stack, err := sctp.NewStack(sctpMode)
			if err != nil {
				return fmt.Errorf("serving %s: %w", p, err)
			}
			s.stack = stack
		}
		l, err := s.stack.Listen(uint16(p.Port), func(req []byte) []byte { return s.answer(req, p) })
		if err != nil {
			return fmt.Errorf("serving %s: %w", p, err)
		}
		s.closers = append(s.closers, l)
		return nil
	}
	return fmt.Errorf("serving %s: unknown protocol", p)
}

// eachFamily listens on the IPv4 and IPv6 wildcard addresses; IPv6 is
// skipped when the kernel has none.
func (s *server) eachFamily(p Port, listen func(network, addr string) error) error {
	proto := map[corev1.Protocol]string{corev1.ProtocolTCP: "tcp", corev1.ProtocolUDP: "udp"}[p.Protocol]
	for _, fam := range []struct{ suffix, host string }{{"4", "0.0.0.0"}, {"6", "::"}} {
		err := listen(proto+fam.suffix, net.JoinHostPort(fam.host, fmt.Sprint(p.Port)))
		if err != nil {
			if fam.suffix == "6" && errors.Is(err, syscall.EAFNOSUPPORT) {
				s.log.Warn("no IPv6 in this kernel, serving IPv4 only", "port", p.String())
				continue
			}
			return fmt.Errorf("serving %s on IPv%s: %w", p, fam.suffix, err)
		}
	}
	return nil
}

// answer builds the reply to a request. A request that does not parse is
// still answered with the identity (and whatever nonce it had), so the
// client can tell what it reached.
func (s *server) answer(req []byte, p Port) []byte {
	r, err := wire.ParseRequest(req)
	if err != nil {
		s.log.Debug("malformed probe request", "port", p.String(), "err", err)
	}
	return wire.Marshal(wire.Answer{
		Version:   wire.Version,
		Nonce:     r.Nonce,
		Identity:  s.identity,
		Container: p.Container,
		Port:      p.Port,
		Protocol:  string(p.Protocol),
	})
}

func (s *server) acceptTCP(l net.Listener, p Port) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed", "port", p.String(), "err", err)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(requestTimeout))
			line, err := bufio.NewReaderSize(io.LimitReader(conn, wire.MaxMessage), wire.MaxMessage).ReadSlice('\n')
			if err != nil && len(line) == 0 {
				return
			}
			_, _ = conn.Write(s.answer(line, p))
		}()
	}
}

func (s *server) serveUDP(c *udpConn, p Port) {
	defer s.wg.Done()
	buf := make([]byte, wire.MaxMessage)
	for {
		n, from, local, err := c.receive(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if err := c.reply(s.answer(buf[:n], p), from, local); err != nil {
			s.log.Debug("UDP answer failed", "port", p.String(), "to", from, "err", err)
		}
	}
}

// shutdown closes every listener and waits for the answers in progress.
func (s *server) shutdown() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.wg.Wait()
	if s.stack != nil {
		_ = s.stack.Close()
	}
}
