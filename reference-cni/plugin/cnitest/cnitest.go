// Package cnitest holds helpers for the reference CNI's integration tests:
// named network namespaces that clean themselves up, building a binary of
// the module for libcni to run, and TCP reachability between namespaces.
// Every namespace it creates is named "npc-t<pid>-<suffix>".
package cnitest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// RequireRoot skips the test unless it runs as root, which namespaces need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// Netns is a named network namespace created for a test.
type Netns struct {
	Name string
	// Path is the namespace's bind mount, /run/netns/<Name>.
	Path string
}

// NewNetns creates the namespace "npc-t<pid>-<suffix>" with its loopback up
// and deletes it when the test ends, pass or fail, unless the test deleted
// it already. Deleting a namespace also deletes its veths.
func NewNetns(t testing.TB, suffix string) Netns {
	t.Helper()
	name := fmt.Sprintf("npc-t%d-%s", os.Getpid(), suffix)
	IP(t, "netns", "add", name)
	path := filepath.Join("/run/netns", name)
	t.Cleanup(func() {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("deleting network namespace %s: %v: %s", name, err, out)
		}
	})
	IP(t, "-n", name, "link", "set", "lo", "up")
	return Netns{Name: name, Path: path}
}

// IP runs the ip(8) command and fails the test if it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Sysctl sets a sysctl inside the named network namespace (only its
// net.* keys are per namespace).
func Sysctl(t testing.TB, netnsName, key, value string) {
	t.Helper()
	IP(t, "netns", "exec", netnsName, "sysctl", "-qw", key+"="+value)
}

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
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, output)
	}
	return out, nil
}

// ServeTCP listens on addr inside the namespace at netnsPath and answers
// every connection with greeting and a newline, until the test ends.
func ServeTCP(t testing.TB, netnsPath string, addr netip.AddrPort, greeting string) {
	t.Helper()
	var ln net.Listener
	err := kubeclient.InNetns(netnsPath, func() error {
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
	err := kubeclient.InNetns(netnsPath, func() error {
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
