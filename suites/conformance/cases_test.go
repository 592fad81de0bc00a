package conformance_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// testCase is one case of the catalogue, run on a process's probe model.
type testCase struct {
	// id is the case's name in conformance/<id>; title says what it checks.
	id, title string
	// upstream lists the upstream e2e tests the case reproduces.
	upstream []upstreamTest
	// labels are feature labels the policies do not show, such as the
	// protocol an upstream context is about; the others are derived.
	labels []string
	// nodes adds the probe model's node endpoints (one host-network pod per
	// node) to the matrix.
	nodes bool
	steps []step
}

// upstreamTest names an upstream test by its context and It text.
type upstreamTest struct{ context, it string }

// The contexts of test/e2e/network/netpol (Kubernetes v1.37).
const (
	upstreamTCP  = "NetworkPolicy between server and client"
	upstreamUDP  = "NetworkPolicy between server and client using UDP"
	upstreamSCTP = "NetworkPolicy between server and client using SCTP"
	upstreamAPI  = "Netpol API"
)

// step changes policies or labels, then the whole matrix is probed.
type step struct {
	name string
	// policies is the complete set in force after the step; nil leaves the
	// policies as they are.
	policies func(w world) []*networkingv1.NetworkPolicy
	// labels replaces the labels of namespaces ("y") and pods ("x/b").
	labels map[string]map[string]string
	// manifest must be rejected with an error containing rejected, by
	// netpolcheck and by the API server; nothing changes.
	manifest, rejected string
	// expect states the step's key outcomes (the upstream assertions).
	expect []framework.Outcome
}

// ID is the case's ID in reports.
func (c *testCase) ID() string { return "conformance/" + c.id }

// changes reports whether step i changes the policies or labels in force.
func (c *testCase) changes(i int) bool {
	s := c.steps[i]
	return s.rejected == "" && (s.policies != nil || s.labels != nil)
}

// dnsPod is the logical name of the probe model's DNS-like pod in outcomes
// (and its name in the offline model).
const dnsPod = "kube-system/dns"

// offlineNodePort is the node endpoints' port in the offline model (that of
// process 1).
var offlineNodePort = framework.NodePort(1)

// offlineModel is the probe model with made-up IPs and logical names (the
// zero framework.Names maps every name to itself): namespaces x, y, z with
// pods a, b, c serving 80 and 81 on TCP, UDP and SCTP, the DNS-like pod in
// kube-system and the two external hosts; with nodes, pods a and c run on
// node1 and b and the DNS-like pod on node2, and namespace nodes holds a
// host-network pod per node.
func offlineModel(nodes bool) *matrix.Model {
	m := &matrix.Model{}
	for i, ns := range []string{"x", "y", "z"} {
		m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: ns, Labels: map[string]string{"ns": ns, corev1.LabelMetadataName: ns}})
		for j, pod := range []string{"a", "b", "c"} {
			p := matrix.Pod{Namespace: ns, Name: pod, Labels: map[string]string{"pod": pod},
				IPs: []string{fmt.Sprintf("10.244.%d.%d", j+1, 10+i)}}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{tcp, udp, sctp} {
					name := fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
					p.Containers = append(p.Containers, matrix.Container{Name: name,
						Ports: []matrix.ContainerPort{{Name: name, ContainerPort: port, Protocol: proto}}})
				}
			}
			m.Pods = append(m.Pods, p)
		}
	}
	m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: "kube-system", Labels: map[string]string{corev1.LabelMetadataName: "kube-system"}})
	m.Pods = append(m.Pods, matrix.Pod{Namespace: "kube-system", Name: "dns", IPs: []string{"10.244.3.2"},
		Labels: map[string]string{"k8s-app": "netpolcheck-dns", "pod": "dns"},
		Containers: []matrix.Container{
			{Name: "serve-53-udp", Ports: []matrix.ContainerPort{{Name: "dns-udp", ContainerPort: 53, Protocol: udp}}},
			{Name: "serve-53-tcp", Ports: []matrix.ContainerPort{{Name: "dns-tcp", ContainerPort: 53, Protocol: tcp}}},
		}})
	var ports []matrix.ContainerPort
	for _, port := range []int32{80, 81} {
		for _, proto := range []corev1.Protocol{tcp, udp, sctp} {
			ports = append(ports, matrix.ContainerPort{ContainerPort: port, Protocol: proto})
		}
	}
	m.Externals = []matrix.External{
		{Name: "ext1", IPs: []string{"192.0.2.10"}, Ports: ports},
		{Name: "ext2", IPs: []string{"192.0.2.11"}, Ports: ports},
	}
	if nodes {
		addOfflineNodes(m)
	}
	return m
}

func addOfflineNodes(m *matrix.Model) {
	for i := range m.Pods {
		m.Pods[i].Node = "node2"
		if m.Pods[i].Name == "a" || m.Pods[i].Name == "c" {
			m.Pods[i].Node = "node1"
		}
	}
	m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: framework.NodesNamespace,
		Labels: map[string]string{"ns": framework.NodesNamespace, corev1.LabelMetadataName: framework.NodesNamespace}})
	for i, node := range []string{"node1", "node2"} {
		m.Pods = append(m.Pods, matrix.Pod{Namespace: framework.NodesNamespace, Name: "host-" + node,
			Labels: map[string]string{"pod": "host"}, IPs: []string{fmt.Sprintf("10.250.0.%d", 11+i)}, Node: node, HostNetwork: true,
			Containers: []matrix.Container{{Name: "serve-node-tcp", Ports: []matrix.ContainerPort{{ContainerPort: offlineNodePort, Protocol: tcp}}}}})
	}
}

// offlineWorld is the world of offlineModel.
func offlineWorld(m *matrix.Model) world {
	w := world{ips: map[string]string{}, nodes: map[string]string{}, nodePort: offlineNodePort}
	for _, p := range m.Pods {
		w.ips[matrix.PodName(p.Namespace, p.Name)] = p.IPs[0]
		w.nodes[matrix.PodName(p.Namespace, p.Name)] = p.Node
	}
	return w
}

// offlineStep is the state after one step on the offline model.
type offlineStep struct {
	model    *matrix.Model
	world    world
	inForce  []*networkingv1.NetworkPolicy
	changed  bool
	rejected bool
}

// offline plays the case's steps on the offline model.
func (c *testCase) offline() []offlineStep {
	model := offlineModel(c.nodes)
	w := offlineWorld(model)
	var inForce []*networkingv1.NetworkPolicy
	out := make([]offlineStep, len(c.steps))
	for i, s := range c.steps {
		if s.rejected == "" {
			if s.policies != nil {
				inForce = s.policies(w)
			}
			if s.labels != nil {
				model = relabelled(model, s.labels)
			}
		}
		out[i] = offlineStep{model: model, world: w, inForce: inForce, changed: c.changes(i), rejected: s.rejected != ""}
	}
	return out
}

// relabelled returns a copy of the model with the labels of namespaces ("y")
// and pods ("x/b") replaced; namespaces keep kubernetes.io/metadata.name, as
// on the API server.
func relabelled(m *matrix.Model, changes map[string]map[string]string) *matrix.Model {
	out := &matrix.Model{Externals: m.Externals}
	for _, ns := range m.Namespaces {
		if l, ok := changes[ns.Name]; ok {
			ns.Labels = maps.Clone(l)
			ns.Labels[corev1.LabelMetadataName] = ns.Name
		}
		out.Namespaces = append(out.Namespaces, ns)
	}
	for _, p := range m.Pods {
		if l, ok := changes[matrix.PodName(p.Namespace, p.Name)]; ok {
			p.Labels = maps.Clone(l)
		}
		out.Pods = append(out.Pods, p)
	}
	return out
}

// Labels returns the case's Ginkgo labels: Conformance, Update when a later
// step changes policies or labels, the features of its policies, and
// IPBlockPodIP with ImplementationDefined when a verdict of the offline model
// depends on an ipBlock matching a pod IP.
func (c *testCase) Labels() ([]string, error) {
	labels := append([]string{framework.LabelConformance}, c.labels...)
	for i, st := range c.offline() {
		if i > 0 && st.changed {
			labels = append(labels, generate.LabelUpdate)
		}
		labels = append(labels, framework.FeatureLabels(st.inForce)...)
		impl, err := framework.ImplementationDefinedLabels(st.model, st.inForce)
		if err != nil {
			return nil, fmt.Errorf("%s step %d: %w", c.ID(), i+1, err)
		}
		labels = append(labels, impl...)
	}
	slices.Sort(labels)
	return slices.Compact(labels), nil
}

// Scenario turns the case into a scenario on the probe model, whose pods
// have the IPs and nodes of live (by logical name). Outcomes about another
// node are left out when there is no other node.
func (c *testCase) Scenario(m *framework.ProbeModel, live world, labels []string) *framework.Scenario {
	steps := make([]framework.Step, len(c.steps))
	for i, s := range c.steps {
		st := framework.Step{Name: s.name, Manifests: s.manifest, Rejected: s.rejected}
		if s.policies != nil {
			st.Policies = func(n framework.Names) []*networkingv1.NetworkPolicy {
				w := live
				w.names = n
				return s.policies(w)
			}
		}
		if s.labels != nil {
			st.Labels = func(framework.Names) map[string]map[string]string { return s.labels }
		}
		for _, o := range s.expect {
			o, ok := live.outcome(o)
			if !ok {
				continue
			}
			o.From, o.To = realDNS(o.From, m), realDNS(o.To, m)
			o.Doc = c.title
			st.Expect = append(st.Expect, o)
		}
		steps[i] = st
	}
	sc := m.Scenario(c.ID(), c.title, labels, steps...)
	sc.Nodes = c.nodes
	return sc
}

func realDNS(endpoint string, m *framework.ProbeModel) string {
	if endpoint == dnsPod {
		return m.DNS
	}
	return endpoint
}
