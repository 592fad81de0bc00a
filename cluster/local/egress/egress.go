// Package egress is the local cluster's egress proxy: the API server's
// "cluster" egress selector (HTTP CONNECT over a Unix socket) ends here, and
// every connection it asks for is opened inside the network namespace of the
// node it names, never in this machine's own namespace. A CONNECT names a
// node by its InternalIP or by its name (which resolves nowhere else); any
// other host is refused, so nothing is resolved through the machine's
// resolver and nothing is routed through its default route.
package egress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Node is a destination the proxy reaches.
type Node struct {
	Name, IP string
	// Dial opens a connection inside the node's network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Proxy answers HTTP CONNECT requests.
type Proxy struct {
	nodes map[string]Node // by name and by IP
	log   *slog.Logger
}

// New returns a proxy to the nodes.
func New(nodes []Node, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{nodes: map[string]Node{}, log: log}
	for _, n := range nodes {
		if n.Name == "" || net.ParseIP(n.IP) == nil || n.Dial == nil {
			return nil, fmt.Errorf("egress proxy: node %q needs a name, an IP address and a dialer", n.Name)
		}
		p.nodes[n.Name], p.nodes[n.IP] = n, n
	}
	return p, nil
}

// Serve answers the connections of l until ctx ends.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	context.AfterFunc(ctx, func() { l.Close() })
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("egress proxy: %w", err)
		}
		wg.Go(func() { p.handle(ctx, conn) })
	}
}

// handle answers one CONNECT and then copies both ways.
func (p *Proxy) handle(ctx context.Context, client net.Conn) {
	defer client.Close()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	req, err := http.ReadRequest(r)
	if err != nil {
		p.log.Warn("egress proxy: reading the request", "err", err)
		return
	}
	_ = client.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		p.refuse(client, http.StatusMethodNotAllowed, "only CONNECT")
		return
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		p.refuse(client, http.StatusBadRequest, err.Error())
		return
	}
	node, ok := p.nodes[strings.TrimSuffix(host, ".")]
	if !ok {
		p.log.Warn("egress proxy: refused CONNECT to a host that is no node", "host", req.Host)
		p.refuse(client, http.StatusForbidden, "not a node of this cluster: "+host)
		return
	}
	target := net.JoinHostPort(node.IP, port)
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	server, err := node.Dial(dialCtx, "tcp", target)
	cancel()
	if err != nil {
		p.log.Warn("egress proxy: dialing in the node", "node", node.Name, "target", target, "err", err)
		p.refuse(client, http.StatusBadGateway, err.Error())
		return
	}
	defer server.Close()
	p.log.Info("CONNECT", "host", req.Host, "node", node.Name, "target", target)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { client.Close(); server.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// What the client sent after its request is in r's buffer.
		_, _ = io.Copy(server, r)
		if tcp, ok := server.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	}()
	_, _ = io.Copy(client, server)
	// The node closed: so does the client's side, which ends the other copy.
	client.Close()
	server.Close()
	<-done
}

func (p *Proxy) refuse(client net.Conn, status int, reason string) {
	fmt.Fprintf(client, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, http.StatusText(status), len(reason), reason)
}

// ParseNode reads a NAME=IP@NETNS_PATH argument.
func ParseNode(arg string) (name, ip, netnsPath string, err error) {
	name, rest, ok := strings.Cut(arg, "=")
	if !ok {
		return "", "", "", fmt.Errorf("egress proxy: want NAME=IP@NETNS_PATH, not %q", arg)
	}
	ip, netnsPath, ok = strings.Cut(rest, "@")
	if !ok || name == "" || net.ParseIP(ip) == nil || netnsPath == "" {
		return "", "", "", fmt.Errorf("egress proxy: want NAME=IP@NETNS_PATH, not %q", arg)
	}
	return name, ip, netnsPath, nil
}
