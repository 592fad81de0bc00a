package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// APIForward makes the API server reachable inside the node's network
// namespace, for programs that cannot be told to open their connections
// elsewhere (kube-proxy, CoreDNS): it listens on Listen and copies every
// connection to and from one that Dial opens to Target. TLS passes through
// untouched, so clients verify the API server's own certificate.
type APIForward struct {
	// Listen are addresses in the node's namespace ("127.0.0.1:6443").
	Listen []string
	// Target is the API server's address as Dial understands it.
	Target string
	Dial   func(ctx context.Context, network, address string) (net.Conn, error)
}

// serve listens on every address and forwards until ctx ends.
func (f *APIForward) serve(ctx context.Context, log func(msg string, args ...any)) error {
	var listeners []net.Listener
	for _, addr := range f.Listen {
		l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("API server forwarder: %w", err)
		}
		listeners = append(listeners, l)
	}
	go func() {
		<-ctx.Done()
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, l := range listeners {
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					if ctx.Err() == nil {
						log("API server forwarder stopped accepting", "listen", l.Addr().String(), "err", err)
					}
					return
				}
				go f.forward(ctx, conn, log)
			}
		}()
	}
	return nil
}

// forward copies one connection both ways until either side closes.
func (f *APIForward) forward(ctx context.Context, client net.Conn, log func(msg string, args ...any)) {
	defer client.Close()
	server, err := f.Dial(ctx, "tcp", f.Target)
	if err != nil {
		log("API server forwarder: dialing the API server", "target", f.Target, "err", err)
		return
	}
	defer server.Close()
	stop := context.AfterFunc(ctx, func() { client.Close(); server.Close() })
	defer stop()
	var wg sync.WaitGroup
	for _, pair := range [][2]net.Conn{{server, client}, {client, server}} {
		wg.Go(func() {
			// Errors end the copy like EOF does: resets are routine.
			_, _ = io.Copy(pair[0], pair[1])
			// Half-close, so that the other direction ends too.
			if tcp, ok := pair[0].(*net.TCPConn); ok {
				_ = tcp.CloseWrite()
			} else {
				pair[0].Close()
			}
		})
	}
	wg.Wait()
}
