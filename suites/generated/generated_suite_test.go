// Package generated_test runs combinatorial cases from the policy generator
// (peers x ports x directions x selectors x policy updates), deterministic
// by seed, on each process's probe model, comparing every cell of every
// step's matrix with the engine.
//
//	NETPOLCHECK_SEED=1 NETPOLCHECK_GENERATED_CASES=300 go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/generated
package generated_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/reports"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

func TestGenerated(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "netpolcheck generated")
}

var suite = framework.NewSuite("generated", true)

// universe is the probe model by logical names: policies are generated at
// tree construction, before the model exists, and their namespaces are
// mapped to this run's when applied (generate.InNamespaces), with the
// kubernetes.io/metadata.name values their namespace selectors match on.
// Namespaces are also selected by their ns=<x|y|z> label, which the real
// namespaces carry.
func universe() generate.Universe {
	return generate.Universe{
		Namespaces: []generate.Namespace{{Name: "x", Label: "x"}, {Name: "y", Label: "y"}, {Name: "z", Label: "z"}},
		Pods:       []string{"a", "b", "c"},
		Ports: []generate.Port{
			{Port: 80, Name: "serve-80-tcp", Protocol: "TCP"}, {Port: 81, Name: "serve-81-tcp", Protocol: "TCP"},
			{Port: 80, Name: "serve-80-udp", Protocol: "UDP"}, {Port: 81, Name: "serve-81-udp", Protocol: "UDP"},
			{Port: 80, Name: "serve-80-sctp", Protocol: "SCTP"}, {Port: 81, Name: "serve-81-sctp", Protocol: "SCTP"},
		},
		PodCIDRs:      []string{"10.244.1.0/24", "10.244.2.0/24"},
		ExternalCIDR:  "192.0.2.0/24",
		ExternalHosts: []string{"192.0.2.11/32"},
	}
}

func envInt(key string, fallback int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return fallback
}

var _ = Describe("generated cases", func() {
	seed := uint64(envInt("NETPOLCHECK_SEED", 1))
	for i, c := range generate.Cases(seed, envInt("NETPOLCHECK_GENERATED_CASES", 300), universe()) {
		labels := append([]string{framework.LabelGenerated}, c.Labels...)
		if slices.Contains(c.Labels, generate.LabelIPBlockPodIP) {
			labels = append(labels, reports.LabelImplementationDefined)
		}
		id := fmt.Sprintf("generated/%04d", i)
		It(id+": "+c.Name, Label(labels...), func(ctx SpecContext) {
			model := suite.Model()
			var steps []framework.Step
			var coverage generate.SelectorCoverage
			for j, policies := range c.Steps {
				name := "policies"
				if j > 0 {
					name = "update"
				}
				cov, err := generate.NamespaceSelectorCoverage(generate.InNamespaces(policies, model.Namespace), model.Namespaces())
				Expect(err).NotTo(HaveOccurred())
				coverage = coverage.Add(cov)
				steps = append(steps, framework.Step{Name: name, Policies: inNamespaces(policies)})
			}
			AddReportEntry(selectorCoverageEntry, coverage, ReportEntryVisibilityNever)
			GinkgoWriter.Println(coverage)
			suite.Run(ctx, model.Scenario(id, c.Name, labels, steps...))
		})
	}
})

// selectorCoverageEntry names the report entry (a JUnit property, as JSON)
// in which each generated case records its generate.SelectorCoverage.
const selectorCoverageEntry = "netpolcheck.generated.selectorCoverage"

// The run's count of namespace selectors that selected nothing, over every
// case that ran, on every process.
var _ = ReportAfterSuite("generated namespace selectors", func(r Report) {
	var total generate.SelectorCoverage
	for _, spec := range r.SpecReports {
		for _, entry := range spec.ReportEntries {
			if entry.Name != selectorCoverageEntry {
				continue
			}
			// the raw value: the struct on this process, decoded JSON from the others
			raw, err := json.Marshal(entry.GetRawValue())
			Expect(err).NotTo(HaveOccurred())
			var c generate.SelectorCoverage
			Expect(json.Unmarshal(raw, &c)).To(Succeed())
			total = total.Add(c)
		}
	}
	fmt.Fprintf(os.Stdout, "generated cases: %s\n", total)
})

// inNamespaces maps generated policies into this run's namespaces.
func inNamespaces(policies []*networkingv1.NetworkPolicy) func(framework.Names) []*networkingv1.NetworkPolicy {
	return func(n framework.Names) []*networkingv1.NetworkPolicy {
		return generate.InNamespaces(policies, n.Namespace)
	}
}
