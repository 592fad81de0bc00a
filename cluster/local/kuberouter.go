package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodeagent"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// kubeRouterKubeconfig is where kube-router's manifest mounts its
// kubeconfig from (a hostPath): its docs ask the node's admin to put one
// there.
const kubeRouterKubeconfig = "/var/lib/kube-router/kubeconfig"

// buildKubeRouter builds kube-router, the binary of its image.
func buildKubeRouter(ctx context.Context, opts Options) (map[string]string, error) {
	build := opts.toolBuild(opts.KubeRouter)
	path, err := controlplane.EnsureKubeRouter(ctx, build)
	if err != nil {
		return nil, err
	}
	return map[string]string{nodeagent.BinaryKubeRouter: path}, nil
}

// writeKubeRouterKubeconfig writes the node's /var/lib/kube-router/kubeconfig
// as the admin would: the cluster's admin credentials, with the node-local
// forwarder of the API server as the server, an address kube-router reaches
// from inside the node's network namespace.
func writeKubeRouterKubeconfig(c *Cluster, node topology.Node) error {
	conf, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the admin kubeconfig: %w", err)
	}
	for _, cluster := range conf.Clusters {
		cluster.Server = nodeLocalAPIServer
	}
	path := c.NodeFile(node.Name, kubeRouterKubeconfig)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("kube-router's kubeconfig on %s: %w", node.Name, err)
	}
	if err := clientcmd.WriteToFile(*conf, path); err != nil {
		return fmt.Errorf("writing kube-router's kubeconfig on %s: %w", node.Name, err)
	}
	return nil
}
