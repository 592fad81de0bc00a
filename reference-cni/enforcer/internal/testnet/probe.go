package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// Probe connects from one endpoint to another's primary address on pp and
// says what happened. Connected means the destination answered with its own
// name.
func (topo *Topology) Probe(from, to string, pp matrix.PortProtocol, timeout time.Duration) (matrix.Outcome, error) {
	src, dstIP, err := topo.pair(from, to)
	if err != nil {
		return matrix.Error, err
	}
	var answer string
	switch pp.Protocol {
	case corev1.ProtocolTCP:
		answer, err = probeTCP(src.NS, dstIP, pp.Port, timeout)
	case corev1.ProtocolUDP:
		answer, err = probeUDP(src.NS, dstIP, pp.Port, 0, timeout)
	case corev1.ProtocolSCTP:
		answer, err = probeSCTP(src.NS, dstIP, uint16(pp.Port), timeout)
	default:
		return matrix.Error, fmt.Errorf("protocol %s is not probed", pp.Protocol)
	}
	return outcome(to, answer, err)
}

// ProbeUDPFrom sends a UDP probe from a fixed local port of the source, so
// that several probes share one 5-tuple (and one conntrack entry).
func (topo *Topology) ProbeUDPFrom(from, to string, localPort int, port int32, timeout time.Duration) (matrix.Outcome, error) {
	src, dstIP, err := topo.pair(from, to)
	if err != nil {
		return matrix.Error, err
	}
	answer, err := probeUDP(src.NS, dstIP, port, localPort, timeout)
	return outcome(to, answer, err)
}

// pair returns the source endpoint and the destination's primary address,
// which the source must have a family for.
func (topo *Topology) pair(from, to string) (*Endpoint, netip.Addr, error) {
	src, dst := topo.Endpoints[from], topo.Endpoints[to]
	if src == nil || dst == nil {
		return nil, netip.Addr{}, fmt.Errorf("unknown endpoint in %s -> %s", from, to)
	}
	dstIP, ok := dst.PrimaryIP()
	if !ok {
		return nil, netip.Addr{}, fmt.Errorf("%s has no address", to)
	}
	if _, ok := src.IPFor(dstIP); !ok {
		return nil, netip.Addr{}, fmt.Errorf("%s -> %s: %w", from, dstIP, errNoFamily)
	}
	return src, dstIP, nil
}

// outcome classifies the answer of a probe of the endpoint named to.
func outcome(to, answer string, err error) (matrix.Outcome, error) {
	switch {
	case err == nil && answer == to:
		return matrix.Connected, nil
	case err == nil:
		return matrix.WrongPeer, fmt.Errorf("answered by %q", answer)
	case errors.Is(err, syscall.ECONNREFUSED):
		return matrix.Refused, err
	case errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return matrix.Timeout, err
	}
	return matrix.Error, err
}

// errNoFamily says the source has no address of the destination's family:
// no connection is possible.
var errNoFamily = errors.New("the source has no address of the destination's family")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func hostPort(ip netip.Addr, port int32) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

func probeTCP(ns *netnstest.Netns, dst netip.Addr, port int32, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", hostPort(dst, port), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// probeUDP sends from localPort, or from an ephemeral port when it is 0.
func probeUDP(ns *netnstest.Netns, dst netip.Addr, port int32, localPort int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var c net.Conn
	dialer := net.Dialer{LocalAddr: &net.UDPAddr{Port: localPort}}
	if err := ns.Do(func() (err error) { c, err = dialer.Dial("udp", hostPort(dst, port)); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("probe")); err != nil {
			return "", err
		}
		c.SetReadDeadline(earliest(time.Now().Add(250*time.Millisecond), deadline))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n]), nil
		}
		if !isTimeout(err) {
			return "", err
		}
	}
	return "", errTimeout
}

// Observe probes every cell of expected (in parallel, at most parallel at
// once) and returns the observed table, of the same shape. Probes that fail
// to run (outcome Error) or reach the wrong endpoint are returned as errors;
// a source without an address of the destination's family cannot connect.
func (topo *Topology) Observe(expected *matrix.Table, timeout time.Duration, parallel int) (*matrix.Table, error) {
	observed := matrix.NewTable(expected.Endpoints(), expected.Ports())
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	slots := make(chan struct{}, parallel)
	expected.Each(func(c matrix.Cell) bool {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			outcome, err := topo.Probe(c.From, c.To, c.PortProtocol(), timeout)
			mu.Lock()
			defer mu.Unlock()
			if (outcome == matrix.Error && !errors.Is(err, errNoFamily)) || outcome == matrix.WrongPeer {
				errs = append(errs, fmt.Errorf("%s: %s: %w", c, outcome, err))
			}
			if err := observed.Set(c.From, c.To, c.PortProtocol(), outcome.Reached()); err != nil {
				errs = append(errs, err)
			}
		}()
		return true
	})
	wg.Wait()
	return observed, errors.Join(errs...)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
