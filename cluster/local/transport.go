package local

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/prober"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// DNSArgs are the probe agent's flags that resolve names as a pod of
// namespace does in the local cluster (pod processes share this machine's
// resolv.conf, so a pod's DNS settings travel as flags).
func DNSArgs(namespace string) []string {
	return []string{"--dns-server", ClusterDNSIP, "--dns-search", strings.Join(prober.SearchList(namespace, ClusterDomain), ",")}
}

// ProbeTransport returns a transport that runs each probe batch inside the
// source's network namespace: a pod's, found from its UID in podUIDs (by
// endpoint name) in its node's filesystem view, a host-network pod's
// node's, or an external host's.
// Probes from pods resolve names through the cluster DNS.
func (c *Cluster) ProbeTransport(podUIDs map[string]string) *transport.LocalNetns {
	externals := map[string]string{}
	for _, x := range c.Externals {
		externals[x.Name] = netns.Path(x.Netns)
	}
	nodes := map[string]string{}
	for _, n := range c.Nodes {
		nodes[n.Name] = netns.Path(n.Netns)
	}
	return &transport.LocalNetns{
		Binary: filepath.Join(c.BinDir, ProbeBinary),
		NetnsPath: func(ep matrix.Endpoint) (string, error) {
			if ep.External {
				if p, ok := externals[ep.Name]; ok {
					return p, nil
				}
				return "", fmt.Errorf("the local cluster has no external host %s", ep.Name)
			}
			if ep.HostNetwork {
				if p, ok := nodes[ep.Node]; ok {
					return p, nil
				}
				return "", fmt.Errorf("host-network pod %s: the local cluster has no node %q", ep.Name, ep.Node)
			}
			uid, ok := podUIDs[ep.Name]
			if !ok {
				return "", fmt.Errorf("no pod %s", ep.Name)
			}
			return c.PodNetnsPath(ep.Node, uid)
		},
		SourceArgs: func(ep matrix.Endpoint) []string {
			if ep.External {
				return nil
			}
			return DNSArgs(ep.Namespace)
		},
	}
}
