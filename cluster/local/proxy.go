package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// Services in the local cluster: every node runs the real kube-proxy in
// nftables mode inside its namespace, and its node agent forwards the API
// server into the namespace on APIForwardPort, at 127.0.0.1 (for kube-proxy)
// and at the node's address (the endpoints of the kubernetes Service, for
// pods such as CoreDNS).
const (
	// APIForwardPort is the port of every node's API server forwarder.
	APIForwardPort = 6443
	// nodeLocalAPIServer is where node components reach the API server.
	nodeLocalAPIServer = "https://127.0.0.1:6443"
	// kubeProxyHealthz and kubeProxyMetrics are kube-proxy's addresses,
	// on the node namespace's loopback.
	kubeProxyHealthz = "127.0.0.1:10256"
	kubeProxyMetrics = "127.0.0.1:10249"
	// endpointsManager marks the EndpointSlice the local cluster manages
	// for the kubernetes Service (the API server's reconciler is off).
	endpointsManager = "local.netpolcheck.io"
)

// apiForwardAddresses are the addresses a node agent forwards to the API
// server.
func apiForwardAddresses(node topology.Node) []string {
	port := strconv.Itoa(APIForwardPort)
	return []string{"127.0.0.1:" + port, node.IP.String() + ":" + port}
}

// writeKubeProxyConfig writes the node's kube-proxy kubeconfig (the
// control plane's system:kube-proxy credentials, with the node-local
// forwarder as the server) and its KubeProxyConfiguration, and returns the
// configuration's path. The configuration leaves every host-wide setting
// alone: no conntrack table size or timeouts (sysctls that are global or
// would outlive the cluster), health and metrics on the node's loopback.
func writeKubeProxyConfig(dir string, node topology.Node, proxyKubeconfig string) (string, error) {
	conf, err := clientcmd.LoadFromFile(proxyKubeconfig)
	if err != nil {
		return "", fmt.Errorf("reading the kube-proxy kubeconfig: %w", err)
	}
	for _, cluster := range conf.Clusters {
		cluster.Server = nodeLocalAPIServer
	}
	kubeconfig := filepath.Join(dir, "kube-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*conf, kubeconfig); err != nil {
		return "", fmt.Errorf("writing the kube-proxy kubeconfig of %s: %w", node.Name, err)
	}
	config := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "nftables",
		"clientConnection":   map[string]any{"kubeconfig": kubeconfig},
		"hostnameOverride":   node.Name,
		"clusterCIDR":        topology.PodRange,
		"detectLocalMode":    "ClusterCIDR",
		"nodePortAddresses":  []string{topology.UnderlayRange},
		"healthzBindAddress": kubeProxyHealthz,
		"metricsBindAddress": kubeProxyMetrics,
		"oomScoreAdj":        0,
		"conntrack": map[string]any{
			"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
		},
	}
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kube-proxy.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the kube-proxy configuration of %s: %w", node.Name, err)
	}
	return path, nil
}

// publishAPIEndpoints points the kubernetes Service (the first ClusterIP,
// 10.96.0.1:443) at every node's API server forwarder, so that in-cluster
// clients reach the API server through kube-proxy, as in a real cluster.
func publishAPIEndpoints(ctx context.Context, client kubernetes.Interface, nodes []topology.Node) error {
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes",
			discoveryv1.LabelManagedBy:   endpointsManager,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: new("https"), Port: new(int32(APIForwardPort)), Protocol: new(corev1.ProtocolTCP),
		}},
	}
	for _, n := range nodes {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{n.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   new(n.Name),
		})
	}
	if _, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("publishing the endpoints of the kubernetes Service: %w", err)
	}
	return nil
}
