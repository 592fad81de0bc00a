package matrix_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
)

// largeModel is the benchmark model: 1,000 pods in 50 namespaces,
// each serving 80 and 81 on TCP, UDP and SCTP (6 port/protocols), and 1,000
// generated policies over it.
func largeModel(tb testing.TB) (*matrix.Model, []*networkingv1.NetworkPolicy) {
	tb.Helper()
	m := &matrix.Model{}
	u := generate.Universe{PodCIDRs: []string{"10.244.0.0/18", "10.244.64.0/18"}, ExternalCIDR: "192.0.2.0/24"}
	for i := range 20 {
		u.Pods = append(u.Pods, fmt.Sprintf("p%02d", i))
	}
	for i := range 50 {
		ns := fmt.Sprintf("ns%02d", i)
		u.Namespaces = append(u.Namespaces, generate.Namespace{Name: ns, Label: ns})
		m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: ns, Labels: map[string]string{"ns": ns}})
		for j := range 20 {
			pod := matrix.Pod{Namespace: ns, Name: u.Pods[j], Labels: map[string]string{"pod": u.Pods[j]},
				IPs: []string{fmt.Sprintf("10.244.%d.%d", i, 10+j)}}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{tcp, udp, sctp} {
					name := fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
					pod.Containers = append(pod.Containers, matrix.Container{Name: name,
						Ports: []matrix.ContainerPort{{Name: name, ContainerPort: port, Protocol: proto}}})
					if i == 0 && j == 0 {
						u.Ports = append(u.Ports, generate.Port{Port: port, Name: name, Protocol: proto})
					}
				}
			}
			m.Pods = append(m.Pods, pod)
		}
	}
	g := generate.New(generate.Seeded(1), u)
	policies := make([]*networkingv1.NetworkPolicy, 1000)
	for i := range policies {
		policies[i] = g.Policy(fmt.Sprintf("policy-%04d", i))
	}
	return m, policies
}

// BenchmarkTable measures building the engine and computing the whole
// expected table (1,000 x 1,000 x 6 = 6,000,000 cells).
func BenchmarkTable(b *testing.B) {
	m, policies := largeModel(b)
	b.ReportAllocs()
	var cells int
	for b.Loop() {
		e, err := matrix.NewEngine(m, policies)
		if err != nil {
			b.Fatal(err)
		}
		cells, _ = e.Table().Count()
	}
	b.ReportMetric(float64(cells), "cells")
}

// BenchmarkExplain measures explaining one cell of the large model.
func BenchmarkExplain(b *testing.B) {
	m, policies := largeModel(b)
	e, err := matrix.NewEngine(m, policies)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, to := m.Pods[i%1000], m.Pods[(i*7+13)%1000]
		i++
		if _, err := e.Explain(matrix.PodName(from.Namespace, from.Name), matrix.PodName(to.Namespace, to.Name), pp(81, udp)); err != nil {
			b.Fatal(err)
		}
	}
}
