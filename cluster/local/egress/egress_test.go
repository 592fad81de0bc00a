package egress_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/egress"
)

// startProxy serves a proxy to node1 (10.0.0.1), whose dialer records the
// target and connects to an echo server on loopback.
func startProxy(t *testing.T) (socket string, dialed *atomic.Value) {
	t.Helper()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	dialed = &atomic.Value{}
	dialed.Store("")
	proxy, err := egress.New([]egress.Node{{
		Name: "node1.invalid", IP: "10.0.0.1",
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			dialed.Store(address)
			return (&net.Dialer{}).DialContext(ctx, network, echo.Addr().String())
		},
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	socket = filepath.Join(t.TempDir(), "egress.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = proxy.Serve(ctx, l) }()
	return socket, dialed
}

func TestConnect(t *testing.T) {
	socket, dialed := startProxy(t)
	for _, tc := range []struct {
		request    string
		status     int
		wantDialed string
	}{
		{"CONNECT 10.0.0.1:10250 HTTP/1.1\r\nHost: 10.0.0.1:10250\r\n\r\n", 200, "10.0.0.1:10250"},
		{"CONNECT node1.invalid:10250 HTTP/1.1\r\nHost: node1.invalid:10250\r\n\r\n", 200, "10.0.0.1:10250"},
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 403, ""},
		{"CONNECT 192.0.2.1:10250 HTTP/1.1\r\nHost: 192.0.2.1:10250\r\n\r\n", 403, ""},
		{"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", 405, ""},
	} {
		dialed.Store("")
		conn, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, tc.request); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.request, err)
		}
		if resp.StatusCode != tc.status || dialed.Load() != tc.wantDialed {
			t.Errorf("%q: status %d, dialed %q; want %d, %q", tc.request, resp.StatusCode, dialed.Load(), tc.status, tc.wantDialed)
		}
		if resp.StatusCode == 200 {
			if _, err := io.WriteString(conn, "ping\n"); err != nil {
				t.Fatal(err)
			}
			line, err := r.ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ping" {
				t.Errorf("through the tunnel: %q, %v", line, err)
			}
		}
		conn.Close()
	}
}

func TestParseNode(t *testing.T) {
	name, ip, path, err := egress.ParseNode("node1=10.0.0.1@/run/netns/x")
	if err != nil || name != "node1" || ip != "10.0.0.1" || path != "/run/netns/x" {
		t.Errorf("got %q %q %q %v", name, ip, path, err)
	}
	for _, bad := range []string{"node1", "node1=10.0.0.1", "node1=nope@/x", "=10.0.0.1@/x"} {
		if _, _, _, err := egress.ParseNode(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
