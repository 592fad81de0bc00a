package sctp_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/probes/internal/netlab"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
)

// newStack creates a userspace stack in the node's namespace, closed on cleanup.
func newStack(t *testing.T, lab *netlab.Lab, node string) *sctp.Stack {
	t.Helper()
	var s *sctp.Stack
	var err error
	lab.Do(lab.Node(node), func() { s, err = sctp.NewStack(sctp.Userspace) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack in %s: %v", node, err)
		}
	})
	return s
}

func listen(t *testing.T, s *sctp.Stack, port uint16, name string) {
	t.Helper()
	l, err := s.Listen(port, func(req []byte) []byte { return []byte(name + " got " + string(req)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func exchange(s *sctp.Stack, addr netip.Addr, port uint16, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	answer, err := s.Exchange(ctx, netip.AddrPortFrom(addr, port), []byte("hello"))
	return string(answer), err
}

// Two stacks serve different ports in one namespace, as two probe processes
// of one pod do; a third port is refused, whichever stack answers it.
func TestUserspaceStacksShareANamespace(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	client := newStack(t, lab, "x/a")
	listen(t, newStack(t, lab, "y/b"), 80, "eighty")
	listen(t, newStack(t, lab, "y/b"), 81, "eighty-one")
	for _, addr := range lab.Node("y/b").Addrs() {
		for port, want := range map[uint16]string{80: "eighty got hello", 81: "eighty-one got hello"} {
			got, err := exchange(client, addr, port, 2*time.Second)
			if err != nil || got != want {
				t.Errorf("%s port %d: %q, %v; want %q", addr, port, got, err, want)
			}
		}
		if _, err := exchange(client, addr, 82, 2*time.Second); !errors.Is(err, sctp.ErrRefused) || !strings.Contains(err.Error(), "ABORT") {
			t.Errorf("%s port 82: error %v, want an ABORT refusal", addr, err)
		}
	}
}

func TestUserspaceListenTwiceFails(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "y/b")
	listen(t, newStack(t, lab, "y/b"), 80, "first")
	if _, err := newStack(t, lab, "y/b").Listen(80, func([]byte) []byte { return nil }); err == nil {
		t.Error("a second stack could serve port 80 in the same namespace")
	}
}

func TestUserspaceManyConcurrentAssociations(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	client := newStack(t, lab, "x/a")
	listen(t, newStack(t, lab, "y/b"), 80, "b")
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := lab.Node("y/b").Addrs()[i%2]
			got, err := exchange(client, addr, 80, 5*time.Second)
			if err != nil || got != "b got hello" {
				errs <- fmt.Errorf("association %d to %s: %q, %v", i, addr, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A namespace with no SCTP endpoint at all answers with ICMP (protocol
// unreachable, or its IPv6 form): refused. An address nobody has: timeout.
func TestUserspaceICMPRefusalAndTimeout(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	client := newStack(t, lab, "x/a")
	for _, addr := range lab.Node("y/b").Addrs() {
		if _, err := exchange(client, addr, 80, 2*time.Second); !errors.Is(err, sctp.ErrRefused) || !strings.Contains(err.Error(), "ICMP") {
			t.Errorf("%s without an SCTP endpoint: error %v, want an ICMP refusal", addr, err)
		}
	}
	start := time.Now()
	_, err := exchange(client, netip.MustParseAddr("10.99.2.99"), 80, 500*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unused address: error %v, want deadline exceeded", err)
	}
	// The timeout says where the handshake stood: INIT sent and resent
	// (at 0 and 200 ms), nothing back.
	var stalled *sctp.StalledError
	if !errors.As(err, &stalled) || stalled.State != "COOKIE-WAIT" || stalled.Sent != 2 || stalled.Received != 0 {
		t.Errorf("unused address: error %#v, want a stall in COOKIE-WAIT with 2 packets sent and none received", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("timeout of 500 ms took %v", elapsed)
	}
}

func TestUnknownMode(t *testing.T) {
	if _, err := sctp.NewStack("bogus"); err == nil {
		t.Error("NewStack accepted an unknown mode")
	}
}
