// Package kubeclient builds the Kubernetes client configuration used by the
// reference CNI's node components. On a kind node they run with host network
// and reach the API server directly; on the local cluster they run inside a
// node's network namespace while the API server listens on the loopback of the
// control-plane namespace, so their sockets to the API server are opened there.
package kubeclient

import (
	"context"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/internal/netns"
)

// Config loads a client configuration from a kubeconfig file, or the
// in-cluster configuration when kubeconfig is empty. When dialNetns is set
// (a path such as /proc/1/ns/net or /run/netns/NAME), every connection to the
// API server is opened in that network namespace; the rest of the process
// stays in its own.
func Config(kubeconfig, dialNetns string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %q: %w", kubeconfig, err)
	}
	if dialNetns != "" {
		if _, err := os.Stat(dialNetns); err != nil {
			return nil, fmt.Errorf("network namespace for API server connections: %w", err)
		}
		cfg.Dial = NetnsDialer(dialNetns)
	}
	return cfg, nil
}

// NetnsDialer returns a dial function that creates its sockets inside the
// network namespace at path. A socket keeps the namespace it was created in,
// so only the dial itself runs on a thread switched into that namespace.
func NetnsDialer(path string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		err := netns.Do(path, func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return conn, err
	}
}
