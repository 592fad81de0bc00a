package testnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Serve starts, in every endpoint, a server per port it serves: TCP and UDP
// servers answer each connection or datagram with the endpoint's name, and an
// SCTP responder (raw sockets, the kernel has no SCTP) answers INITs with an
// INIT-ACK whose cookie is the name. Everything stops when the test ends.
func (topo *Topology) Serve() error {
	for _, e := range topo.Endpoints {
		if err := e.serve(topo.net); err != nil {
			return fmt.Errorf("serving in %s: %w", e.Name, err)
		}
	}
	return nil
}

func (e *Endpoint) serve(n *Net) error {
	var closers []io.Closer
	var wg sync.WaitGroup
	n.t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	sctpPorts := map[uint16]bool{}
	for _, p := range e.Ports {
		port := p.ContainerPort.ContainerPort
		switch p.Protocol {
		case corev1.ProtocolTCP:
			var l net.Listener
			if err := e.NS.Do(func() (err error) { l, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); return err }); err != nil {
				return err
			}
			closers = append(closers, l)
			wg.Add(1)
			go func() { defer wg.Done(); serveTCP(l, e.Name) }()
		case corev1.ProtocolUDP:
			var c net.PacketConn
			if err := e.NS.Do(func() (err error) { c, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port)); return err }); err != nil {
				return err
			}
			closers = append(closers, c)
			wg.Add(1)
			go func() { defer wg.Done(); serveUDP(c, e.Name) }()
		case corev1.ProtocolSCTP:
			sctpPorts[uint16(port)] = true
		}
	}
	if len(sctpPorts) == 0 {
		return nil
	}
	for _, v4 := range []bool{true, false} {
		var s *rawSCTP
		if err := e.NS.Do(func() (err error) { s, err = openRawSCTP(v4); return err }); err != nil {
			return err
		}
		closers = append(closers, s)
		wg.Add(1)
		go func() { defer wg.Done(); s.respond(sctpPorts, e.Name) }()
	}
	return nil
}

func serveTCP(l net.Listener, name string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, name+"\n")
		}()
	}
}

func serveUDP(c net.PacketConn, name string) {
	buf := make([]byte, 512)
	for {
		_, addr, err := c.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err == nil {
			c.WriteTo([]byte(name), addr)
		}
	}
}
