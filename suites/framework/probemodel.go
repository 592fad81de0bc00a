package framework

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	. "github.com/onsi/gomega" //nolint:revive // as does Gomega's

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
)

// The upstream-compatible probe model.
var (
	probeNamespaces = []string{"x", "y", "z"}
	probePods       = []string{"a", "b", "c"}
	probePorts      = []int32{80, 81}
	probeProtocols  = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	// probeExternals are the model's external hosts, outside every cluster range.
	probeExternals = []matrix.External{
		{Name: "ext1", IPs: []string{"192.0.2.10"}, Ports: externalPorts()},
		{Name: "ext2", IPs: []string{"192.0.2.11"}, Ports: externalPorts()},
	}
)

// NodesNamespace is the logical namespace of the probe model's node
// endpoints (see ProbeModel.NodeEndpoints).
const NodesNamespace = "nodes"

// nodePortBase plus the process number is the TCP port the node endpoints
// of a process serve: no pod of the model serves it, and parallel processes
// never share a port on a node.
const nodePortBase = 9080

// NodePort is the TCP port the node endpoints of process serve.
func NodePort(process int) int32 { return nodePortBase + int32(process) }

func externalPorts() []matrix.ContainerPort {
	var out []matrix.ContainerPort
	for _, port := range probePorts {
		for _, proto := range probeProtocols {
			out = append(out, matrix.ContainerPort{ContainerPort: port, Protocol: proto})
		}
	}
	return out
}

// ProbeModel is the upstream-shaped model one suite process shares between
// its cases: namespaces x, y, z (labelled ns=<x|y|z>, named with this run's
// and process's suffix), pods a, b, c (labelled pod=<a|b|c>) serving 80 and
// 81 on TCP, UDP and SCTP from containers named serve-80-tcp and so on, a
// DNS-like pod in kube-system serving 53 on UDP and TCP, and two external
// hosts. Cases change only policies and labels, restoring labels after.
type ProbeModel struct {
	env   *Env
	names Names
	// Pods are by logical namespace (x, y, z, kube-system).
	Pods []matrix.Pod
	// DNS is the logical endpoint name of the DNS-like pod.
	DNS       string
	Externals []matrix.External
	// nodes are the node endpoints, once created.
	nodes []matrix.Pod
}

// Namespace returns the real name of a logical namespace of the model.
func (m *ProbeModel) Namespace(logical string) string { return m.names.Namespace(logical) }

// Namespaces returns the model's namespaces by their real names, with the
// labels they are created with and the kubernetes.io/metadata.name label
// the API server adds, and kube-system, where the DNS-like pod runs.
func (m *ProbeModel) Namespaces() []matrix.Namespace {
	var out []matrix.Namespace
	for _, ns := range probeNamespaces {
		name := m.names.Namespace(ns)
		out = append(out, matrix.Namespace{Name: name, Labels: map[string]string{"ns": ns, corev1.LabelMetadataName: name}})
	}
	return append(out, matrix.Namespace{Name: "kube-system", Labels: map[string]string{corev1.LabelMetadataName: "kube-system"}})
}

// Names returns the model's name mapping.
func (m *ProbeModel) Names() Names { return m.names }

// Universe describes the model to the policy generator (real names).
func (m *ProbeModel) Universe() generate.Universe {
	u := generate.Universe{Pods: probePods, PodCIDRs: []string{"10.244.0.0/16"}, ExternalCIDR: "192.0.2.0/24",
		ExternalHosts: []string{"192.0.2.11/32"}}
	for _, ns := range probeNamespaces {
		u.Namespaces = append(u.Namespaces, generate.Namespace{Name: m.names.Namespace(ns), Label: ns})
	}
	for _, port := range probePorts {
		for _, proto := range probeProtocols {
			u.Ports = append(u.Ports, generate.Port{Port: port, Name: containerName(port, proto), Protocol: proto})
		}
	}
	return u
}

func containerName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

// CreateProbeModel creates this process's probe model; Delete removes it.
// Call it from the per-process half of SynchronizedBeforeSuite.
func CreateProbeModel(ctx context.Context, env *Env) *ProbeModel {
	suffix := env.processSuffix()
	m := &ProbeModel{
		env:       env,
		names:     Names{namespaces: map[string]string{}, externals: map[string]string{}},
		DNS:       "kube-system/dns-" + suffix,
		Externals: probeExternals,
	}
	var real []string
	for _, ns := range probeNamespaces {
		name := ns + "-" + suffix
		m.names.namespaces[ns] = name
		real = append(real, name)
		createNamespace(ctx, env, name, map[string]string{"ns": ns})
		for _, pod := range probePods {
			p := matrix.Pod{Namespace: ns, Name: pod, Labels: map[string]string{"pod": pod}}
			for _, port := range probePorts {
				for _, proto := range probeProtocols {
					name := containerName(port, proto)
					p.Containers = append(p.Containers, matrix.Container{Name: name,
						Ports: []matrix.ContainerPort{{Name: name, ContainerPort: port, Protocol: proto}}})
				}
			}
			m.Pods = append(m.Pods, p)
		}
	}
	m.names.namespaces["kube-system"] = "kube-system"
	m.names.namespaces[NodesNamespace] = NodesNamespace + "-" + suffix
	dns := matrix.Pod{Namespace: "kube-system", Name: strings.TrimPrefix(m.DNS, "kube-system/"),
		Labels: map[string]string{"k8s-app": "netpolcheck-dns", "pod": "dns"}}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		name := containerName(53, proto)
		dns.Containers = append(dns.Containers, matrix.Container{Name: name,
			Ports: []matrix.ContainerPort{{Name: "dns-" + strings.ToLower(string(proto)), ContainerPort: 53, Protocol: proto}}})
	}
	m.Pods = append(m.Pods, dns)
	for _, p := range m.Pods {
		ns := m.names.Namespace(p.Namespace)
		_, err := env.Client.CoreV1().Pods(ns).Create(ctx, PodObject(ns, p, env.Image), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating pod %s/%s", ns, p.Name)
	}
	_, err := waitPodsRunning(ctx, env.Client, real, len(probeNamespaces)*len(probePods))
	Expect(err).NotTo(HaveOccurred())
	Eventually(ctx, func() bool {
		pod, err := env.Client.CoreV1().Pods("kube-system").Get(ctx, dns.Name, metav1.GetOptions{})
		return err == nil && podReady(pod)
	}).WithTimeout(podReadyTimeout).Should(BeTrue(), "the DNS-like pod is not ready")
	for _, x := range m.Externals {
		m.names.externals[x.Name] = ExternalName(netip.MustParseAddr(x.IPs[0]))
	}
	return m
}

// NodeEndpoints returns the model's node endpoints, creating them on first
// use: one host-network probe pod per node, named host-<node>, labelled
// pod=host, in logical namespace nodes, serving NodePort(process) on TCP.
// A host-network pod has its node's addresses, so probes to and from it are
// traffic to and from its node; no policy selects it.
func (m *ProbeModel) NodeEndpoints(ctx context.Context) []matrix.Pod {
	if m.nodes != nil {
		return m.nodes
	}
	nodes, err := m.env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred(), "listing the nodes")
	Expect(nodes.Items).NotTo(BeEmpty(), "the cluster has no nodes")
	ns := m.names.Namespace(NodesNamespace)
	createNamespace(ctx, m.env, ns, map[string]string{"ns": NodesNamespace})
	port := NodePort(m.env.Process)
	var pods []matrix.Pod
	for _, n := range nodes.Items {
		name := containerName(port, corev1.ProtocolTCP)
		p := matrix.Pod{Namespace: NodesNamespace, Name: "host-" + n.Name, Labels: map[string]string{"pod": "host"},
			Node: n.Name, HostNetwork: true,
			Containers: []matrix.Container{{Name: name, Ports: []matrix.ContainerPort{{ContainerPort: port, Protocol: corev1.ProtocolTCP}}}}}
		_, err := m.env.Client.CoreV1().Pods(ns).Create(ctx, PodObject(ns, p, m.env.Image), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the host-network pod %s/%s", ns, p.Name)
		pods = append(pods, p)
	}
	_, err = waitPodsRunning(ctx, m.env.Client, []string{ns}, len(pods))
	Expect(err).NotTo(HaveOccurred())
	m.nodes = pods
	return pods
}

// Delete removes the model's namespaces (with its node endpoints) and its
// DNS-like pod.
func (m *ProbeModel) Delete(ctx context.Context) error {
	var errs []error
	for _, ns := range append(slices.Clone(probeNamespaces), NodesNamespace) {
		errs = append(errs, deleteNamespace(ctx, m.env, m.names.Namespace(ns)))
	}
	dns := strings.TrimPrefix(m.DNS, "kube-system/")
	if err := m.env.Client.CoreV1().Pods("kube-system").Delete(ctx, dns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("deleting the DNS-like pod: %w", err))
	}
	return errors.Join(errs...)
}

// Scenario returns a scenario on the model.
func (m *ProbeModel) Scenario(id, title string, labels []string, steps ...Step) *Scenario {
	return &Scenario{ID: id, Title: title, Labels: labels, Model: m, Externals: m.Externals, Steps: steps}
}

// ExternalName is the canonical name (and probe identity) of the external
// host at ip.
func ExternalName(ip netip.Addr) string {
	return "ext-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
}

// ExternalHosts returns every external host the scenarios use: one per
// address, serving the union of the ports any scenario wants there.
func ExternalHosts() []ExternalHost {
	byIP := map[netip.Addr]*ExternalHost{}
	var order []netip.Addr
	add := func(x matrix.External) {
		for _, s := range x.IPs {
			ip := netip.MustParseAddr(s)
			h, ok := byIP[ip]
			if !ok {
				h = &ExternalHost{Name: ExternalName(ip), IP: ip}
				byIP[ip] = h
				order = append(order, ip)
			}
			for _, p := range x.Ports {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				spec := fmt.Sprintf("%d/%s", p.ContainerPort, proto)
				if !slices.Contains(h.Ports, spec) {
					h.Ports = append(h.Ports, spec)
				}
			}
		}
	}
	for _, x := range probeExternals {
		add(x)
	}
	for _, r := range recipes.All() {
		for _, x := range r.Externals {
			add(x)
		}
	}
	out := make([]ExternalHost, 0, len(order))
	for _, ip := range order {
		slices.Sort(byIP[ip].Ports)
		out = append(out, *byIP[ip])
	}
	return out
}
