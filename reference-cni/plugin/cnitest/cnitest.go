// Package cnitest holds helpers for the reference CNI's integration tests
// (their namespaces come from internal/netns/netnstest): waiting for a
// link's IPv6 link-local address, building a binary of the module for
// libcni to run, and TCP reachability between namespaces.
package cnitest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/gobuild"
	"github.com/netpolcheck/netpolcheck/internal/netns"
)

// WaitLinkLocal waits until a link in the named namespace has a usable
// IPv6 link-local address. Until the kernel has set IPv6 up on a new link
// (a few tens of milliseconds after it comes up) the first IPv6 packets
// routed across it are lost and cost a one-second retransmission.
func WaitLinkLocal(t testing.TB, netnsName, link string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", netnsName, "-6", "addr", "show", "dev", link, "scope", "link").CombinedOutput()
		if err != nil {
			t.Fatalf("listing addresses of %s in %s: %v: %s", link, netnsName, err, out)
		}
		if strings.Contains(string(out), "fe80") && !strings.Contains(string(out), "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s has no usable link-local address after 5s: %s", link, netnsName, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BuildBinary builds the main package pkg (an import path of this module)
// into dir and returns the binary's path, named after the package's last
// path element.
func BuildBinary(pkg, dir string) (string, error) {
	if err := gobuild.Commands(dir, pkg); err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(pkg)), nil
}

// ServeTCP listens on addr inside the namespace at netnsPath and answers
// every connection with greeting and a newline, until the test ends.
func ServeTCP(t testing.TB, netnsPath string, addr netip.AddrPort, greeting string) {
	t.Helper()
	var ln net.Listener
	err := netns.Do(netnsPath, func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, netnsPath, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(conn, greeting)
			_ = conn.Close()
		}
	}()
}

// DialTCP connects from the namespace at netnsPath to addr and returns the
// first line the server sends.
func DialTCP(netnsPath string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var conn net.Conn
	err := netns.Do(netnsPath, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dialing %s from %s: %w", addr, netnsPath, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}
