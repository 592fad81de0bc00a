// Package conformance_test is netpolcheck's conformance catalogue: every
// connectivity test of the upstream Kubernetes NetworkPolicy e2e
// (test/e2e/network/netpol) and what upstream does not test (endPort ranges,
// ipBlock with external hosts, named ports in egress, policyTypes defaulting,
// every matchExpressions operator, relabelling, policy updates and deletions,
// DNS egress, stacked policies, protocol-only ports, traffic between pods
// and nodes), each case run on the
// process's probe model with the whole matrix checked at every step. The
// mapping to upstream is in README.md.
//
//	go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/conformance
//	go test ./suites/conformance -run TestCatalogue   # offline checks only
package conformance_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/suites/framework"
)

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "netpolcheck conformance")
}

var suite = framework.NewSuite("conformance", true)

var _ = DescribeTable("conformance catalogue", tableArgs()...)

// tableArgs is the table's body followed by an entry per case.
func tableArgs() []any {
	args := []any{func(ctx SpecContext, c testCase, labels []string) {
		m := suite.Model()
		if c.nodes {
			m.NodeEndpoints(ctx)
		}
		suite.Run(ctx, c.Scenario(m, liveWorld(ctx, m), labels))
	}}
	for _, c := range catalogue() {
		labels, err := c.Labels()
		if err != nil {
			panic(err) // TestCatalogueIsValid checks every case offline: this cannot happen
		}
		args = append(args, Entry(c.ID()+": "+c.title, Label(labels...), c, labels))
	}
	return args
}

// liveWorld returns the primary IP and the node of every pod of the model's
// namespaces x, y and z and of its node endpoints (once created), by logical
// name ("x/b"), for ipBlock peers and outcomes about nodes.
func liveWorld(ctx context.Context, m *framework.ProbeModel) world {
	w := world{ips: map[string]string{}, nodes: map[string]string{}, nodePort: framework.NodePort(suite.Env().Process)}
	for _, ns := range []string{"x", "y", "z", framework.NodesNamespace} {
		list, err := suite.Env().Client.CoreV1().Pods(m.Namespace(ns)).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred(), "listing the pods of %s", m.Namespace(ns))
		for _, p := range list.Items {
			w.ips[ns+"/"+p.Name] = p.Status.PodIP
			w.nodes[ns+"/"+p.Name] = p.Spec.NodeName
		}
	}
	return w
}
