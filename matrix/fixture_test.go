package matrix_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
)

// testModel is the upstream-shaped model used by the semantics tests:
// namespaces x, y, z labelled ns=<name>; pods a, b, c labelled pod=<name>;
// every pod serves 80 and 81 on TCP, UDP and SCTP from containers named
// serve-<port>-<protocol>, with ports of the same names; pod IPs
// 10.244.<ns>.<pod> and fd00:10:244:<ns>::<pod> (IPv4 primary); and two
// external hosts serving 80 and 81 on TCP and UDP.
func testModel() *matrix.Model {
	m := &matrix.Model{}
	for i, ns := range []string{"x", "y", "z"} {
		m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: ns, Labels: map[string]string{"ns": ns}})
		for j, pod := range []string{"a", "b", "c"} {
			p := matrix.Pod{
				Namespace: ns, Name: pod,
				Labels: map[string]string{"pod": pod},
				IPs:    []string{fmt.Sprintf("10.244.%d.%d", i+1, 10+j), fmt.Sprintf("fd00:10:244:%d::%d", i+1, 10+j)},
			}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
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
	for i, name := range []string{"ext1", "ext2"} {
		ext := matrix.External{Name: name, IPs: []string{fmt.Sprintf("192.0.2.%d", 10+i)}}
		for _, port := range []int32{80, 81} {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				ext.Ports = append(ext.Ports, matrix.ContainerPort{ContainerPort: port, Protocol: proto})
			}
		}
		m.Externals = append(m.Externals, ext)
	}
	return m
}

// policies parses YAML manifests (namespace defaults to x) or fails the test.
func policies(t testing.TB, yaml string) []*networkingv1.NetworkPolicy {
	t.Helper()
	if strings.TrimSpace(yaml) == "" {
		return nil
	}
	ps, err := manifest.ParsePolicies(t.Name(), []byte(yaml), "x")
	if err != nil {
		t.Fatalf("parsing policies: %v", err)
	}
	return ps.Items
}

func engine(t testing.TB, m *matrix.Model, nps []*networkingv1.NetworkPolicy) *matrix.Engine {
	t.Helper()
	e, err := matrix.NewEngine(m, nps)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// endpoint splits an endpoint name into namespace and pod; externals have no namespace.
type endpoint struct{ ns, pod, name string }

func (e endpoint) external() bool { return e.ns == "" }

func parseEndpoint(name string) endpoint {
	ns, pod, ok := strings.Cut(name, "/")
	if !ok {
		return endpoint{name: name}
	}
	return endpoint{ns: ns, pod: pod, name: name}
}

func pp(port int32, proto corev1.Protocol) matrix.PortProtocol {
	return matrix.PortProtocol{Port: port, Protocol: proto}
}

// checkTable compares every cell of the engine's table with want and reports
// each difference with the engine's explanation. It also checks that the
// explanation of every cell agrees with the table.
func checkTable(t *testing.T, e *matrix.Engine, want func(from, to endpoint, p matrix.PortProtocol) bool) {
	t.Helper()
	table := e.Table()
	bad := 0
	table.Each(func(c matrix.Cell) bool {
		x, err := e.Explain(c.From, c.To, c.PortProtocol())
		if err != nil {
			t.Fatalf("Explain(%s): %v", c, err)
		}
		if x.Allowed != c.Allowed {
			t.Fatalf("%s: table says allowed=%v, explanation says %v:\n%s", c, c.Allowed, x.Allowed, x)
		}
		w := c.From == c.To || want(parseEndpoint(c.From), parseEndpoint(c.To), c.PortProtocol())
		if c.Allowed != w {
			bad++
			if bad <= 5 {
				t.Errorf("%s: engine says allowed=%v, want %v\n%s", c, c.Allowed, w, x)
			}
		}
		return true
	})
	if bad > 5 {
		t.Errorf("... and %d more wrong cells", bad-5)
	}
}
