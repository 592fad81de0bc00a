// Package kubemodel turns a matrix.Model into the Kubernetes objects an API
// server would hold for it (namespaces, scheduled running pods with their
// addresses and container ports), and builds the models the enforcer's tests
// use: pods spread over nodes, addressed from their node's pod CIDR.
package kubemodel

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
)

// Namespaces returns the model's namespaces as API objects, with the
// kubernetes.io/metadata.name label the API server adds to every namespace.
func Namespaces(m *matrix.Model) []*corev1.Namespace {
	out := make([]*corev1.Namespace, 0, len(m.Namespaces))
	for _, ns := range m.Namespaces {
		out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   ns.Name,
			UID:    types.UID("ns-" + ns.Name),
			Labels: WithNameLabel(ns.Name, ns.Labels),
		}})
	}
	return out
}

// WithNameLabel returns a copy of labels with kubernetes.io/metadata.name set
// to the namespace name, as the API server guarantees.
func WithNameLabel(namespace string, labels map[string]string) map[string]string {
	out := map[string]string{corev1.LabelMetadataName: namespace}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// AddNameLabels gives every namespace of the model the
// kubernetes.io/metadata.name label, so that the model says what a cluster
// holds.
func AddNameLabels(m *matrix.Model) {
	for i, ns := range m.Namespaces {
		m.Namespaces[i].Labels = WithNameLabel(ns.Name, ns.Labels)
	}
}

// Pods returns the model's pods as running pods scheduled on their node,
// with their addresses in status and their container ports in spec.
func Pods(m *matrix.Model) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(m.Pods))
	for _, p := range m.Pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: p.Namespace, Name: p.Name,
				UID:    types.UID("pod-" + p.Namespace + "-" + p.Name),
				Labels: p.Labels,
			},
			Spec:   corev1.PodSpec{NodeName: p.Node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		container := func(c matrix.Container) corev1.Container {
			ctr := corev1.Container{Name: c.Name, Image: "netpolcheck-probe"}
			for _, cp := range c.Ports {
				ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: cp.Name, ContainerPort: cp.ContainerPort, Protocol: protocolOrTCP(cp.Protocol)})
			}
			return ctr
		}
		for _, c := range p.Sidecars {
			ctr, always := container(c), corev1.ContainerRestartPolicyAlways
			ctr.RestartPolicy = &always
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, ctr)
		}
		for _, c := range p.Containers {
			pod.Spec.Containers = append(pod.Spec.Containers, container(c))
		}
		for i, ip := range p.IPs {
			if i == 0 {
				pod.Status.PodIP = ip
			}
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		out = append(out, pod)
	}
	return out
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// Protocols are the protocols every test pod serves.
func Protocols() []corev1.Protocol {
	return []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
}

// Layout describes a test model: namespaces and pods (the upstream x, y, z
// and a, b, c by default), how many nodes the pods are spread over, whether
// pods are dual-stack and which family comes first (the one probes use), the
// external hosts (IPv4 only) and the ports every endpoint serves.
type Layout struct {
	Namespaces []string
	Pods       []string
	Nodes      int
	DualStack  bool
	IPv6First  bool
	Externals  []string
	Ports      []int32
}

// Upstream is the upstream netpol e2e shape on nodes nodes: namespaces x, y,
// z labelled ns=<name> (and kubernetes.io/metadata.name), pods a, b, c labelled pod=<name>, serving 80 and 81
// on TCP, UDP and SCTP from containers serve-<port>-<protocol> (which name
// their ports the same way), dual-stack, and two external hosts.
func Upstream(nodes int) Layout {
	return Layout{
		Namespaces: []string{"x", "y", "z"},
		Pods:       []string{"a", "b", "c"},
		Nodes:      nodes,
		DualStack:  true,
		Externals:  []string{"ext1", "ext2"},
		Ports:      []int32{80, 81},
	}
}

// NodeName is the name of node k (1-based).
func NodeName(k int) string { return fmt.Sprintf("node%d", k) }

// Model builds the layout's model. Pods go round-robin over the nodes; pod
// number i on node k gets 10.244.k.(10+i) and, when dual-stack,
// fd00:10:244:k::(10+i) (decimal digits). External host j gets
// 192.0.2.(10+j) and serves the ports on TCP and UDP.
func (l Layout) Model() *matrix.Model {
	m := &matrix.Model{}
	perNode := make([]int, l.Nodes+1)
	n := 0
	for _, ns := range l.Namespaces {
		m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: ns, Labels: WithNameLabel(ns, map[string]string{"ns": ns})})
		for _, name := range l.Pods {
			k := n%l.Nodes + 1
			n++
			i := perNode[k]
			perNode[k]++
			p := matrix.Pod{
				Namespace: ns, Name: name, Node: NodeName(k),
				Labels: map[string]string{"pod": name},
				IPs:    []string{fmt.Sprintf("10.244.%d.%d", k, 10+i)},
			}
			if l.DualStack {
				v6 := fmt.Sprintf("fd00:10:244:%d::%d", k, 10+i)
				if l.IPv6First {
					p.IPs = []string{v6, p.IPs[0]}
				} else {
					p.IPs = append(p.IPs, v6)
				}
			}
			for _, port := range l.Ports {
				for _, proto := range Protocols() {
					name := fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
					p.Containers = append(p.Containers, matrix.Container{
						Name:  name,
						Ports: []matrix.ContainerPort{{Name: name, ContainerPort: port, Protocol: proto}},
					})
				}
			}
			m.Pods = append(m.Pods, p)
		}
	}
	for j, name := range l.Externals {
		ext := matrix.External{Name: name, IPs: []string{fmt.Sprintf("192.0.2.%d", 10+j)}}
		for _, port := range l.Ports {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				ext.Ports = append(ext.Ports, matrix.ContainerPort{ContainerPort: port, Protocol: proto})
			}
		}
		m.Externals = append(m.Externals, ext)
	}
	return m
}

// Place spreads the model's pods round-robin over nodes node1..node<nodes>
// and gives pod number i of node k the address 10.244.k.(10+i), replacing
// any addresses it had (recipe models come with addresses per namespace).
func Place(m *matrix.Model, nodes int) {
	perNode := make([]int, nodes+1)
	for i := range m.Pods {
		k := i%nodes + 1
		m.Pods[i].Node = NodeName(k)
		m.Pods[i].IPs = []string{fmt.Sprintf("10.244.%d.%d", k, 10+perNode[k])}
		perNode[k]++
	}
}

// Universe is the generator's universe over the Upstream layout on two
// nodes: its namespaces, pod labels, named ports, pod CIDRs and externals.
func Universe() generate.Universe {
	return generate.Universe{
		Namespaces: []generate.Namespace{{Name: "x", Label: "x"}, {Name: "y", Label: "y"}, {Name: "z", Label: "z"}},
		Pods:       []string{"a", "b", "c"},
		Ports: []generate.Port{
			{Port: 80, Name: "serve-80-tcp", Protocol: corev1.ProtocolTCP},
			{Port: 81, Name: "serve-81-udp", Protocol: corev1.ProtocolUDP},
			{Port: 80, Name: "serve-80-sctp", Protocol: corev1.ProtocolSCTP},
			{Port: 81, Name: "serve-81-tcp", Protocol: corev1.ProtocolTCP},
		},
		PodCIDRs:      []string{"10.244.1.0/24", "10.244.2.0/24", "fd00:10:244:1::/64", "fd00:10:244:2::/64"},
		ExternalCIDR:  "192.0.2.0/24",
		ExternalHosts: []string{"192.0.2.10/32", "192.0.2.11/32"},
	}
}
