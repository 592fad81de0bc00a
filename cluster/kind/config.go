package kind

import (
	"fmt"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// The cluster's networks (docs/network-plan.md). kube-controller-manager
// gives each node a /24 of PodSubnet, which the pod-CIDR-based CNIs
// (reference, Flannel, Canal, kube-router, Cilium in kubernetes IPAM mode)
// use; Calico's pool is set to PodSubnet too.
const (
	PodSubnet     = "10.244.0.0/16"
	ServiceSubnet = "10.96.0.0/16"
)

// Config returns the kind configuration of a cluster named name: one
// control-plane node and workers worker nodes running nodeImage, no default
// CNI (kindnet), the project's pod and service subnets, IPv4, kube-proxy
// in iptables mode (kind's default, pinned so a kind upgrade cannot change
// it under the CNIs).
func Config(name string, workers int, nodeImage string) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     name,
		Networking: v1alpha4.Networking{
			IPFamily:          v1alpha4.IPv4Family,
			PodSubnet:         PodSubnet,
			ServiceSubnet:     ServiceSubnet,
			DisableDefaultCNI: true,
			KubeProxyMode:     v1alpha4.IPTablesProxyMode,
		},
	}
	cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.ControlPlaneRole, Image: nodeImage})
	for range workers {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: nodeImage})
	}
	return cfg
}

// ConfigYAML renders a kind configuration as `kind create cluster
// --config` reads it.
func ConfigYAML(cfg *v1alpha4.Cluster) ([]byte, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("rendering the kind config: %w", err)
	}
	return data, nil
}
