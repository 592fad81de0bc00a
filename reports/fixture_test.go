package reports_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
	"github.com/netpolcheck/netpolcheck/reports"
)

// fixtureModel has pods x/a, x/b and y/a serving 80/TCP and 81/UDP, and an
// external host ext serving 80/TCP only.
func fixtureModel() *matrix.Model {
	m := &matrix.Model{Namespaces: []matrix.Namespace{
		{Name: "x", Labels: map[string]string{"ns": "x"}},
		{Name: "y", Labels: map[string]string{"ns": "y"}},
	}}
	for i, name := range []string{"x/a", "x/b", "y/a"} {
		ns, pod := name[:1], name[2:]
		m.Pods = append(m.Pods, matrix.Pod{
			Namespace: ns, Name: pod, Labels: map[string]string{"pod": pod},
			IPs: []string{[]string{"10.244.1.10", "10.244.1.11", "10.244.2.10"}[i]},
			Containers: []matrix.Container{{Name: "serve", Ports: []matrix.ContainerPort{
				{ContainerPort: 80, Protocol: corev1.ProtocolTCP},
				{ContainerPort: 81, Protocol: corev1.ProtocolUDP},
			}}},
		})
	}
	m.Externals = []matrix.External{{Name: "ext", IPs: []string{"192.0.2.10"}, Ports: []matrix.ContainerPort{{ContainerPort: 80}}}}
	return m
}

// fixturePolicy isolates namespace x for ingress and allows 80/TCP from x.
const fixturePolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: same-namespace-web, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: 80}]
`

func fixtureEngine(t *testing.T) *matrix.Engine {
	t.Helper()
	policies, err := manifest.ParsePolicies("fixture.yaml", []byte(fixturePolicy), "x")
	if err != nil {
		t.Fatal(err)
	}
	e, err := matrix.NewEngine(fixtureModel(), policies.Items)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cluster answers probes: enforcing, it answers what the expected table
// says; otherwise every connection goes through (no policy enforcement).
type cluster struct {
	expected  *matrix.Table
	enforcing bool
}

func (c cluster) RunBatch(_ context.Context, source matrix.Endpoint, probes []matrix.Probe) ([]matrix.Result, error) {
	out := make([]matrix.Result, len(probes))
	for i, p := range probes {
		allowed, _ := c.expected.Get(source.Name, p.Expect, matrix.PortProtocol{Port: p.Port, Protocol: p.Protocol})
		out[i] = matrix.Result{ID: p.ID, Outcome: matrix.Timeout, Detail: "no answer"}
		if allowed || !c.enforcing {
			out[i] = matrix.Result{ID: p.ID, Outcome: matrix.Connected, Peer: p.Expect}
		}
	}
	return out, nil
}

// probeStep runs the fixture's matrix against a cluster (from every source
// except skip) and summarises it.
func probeStep(t *testing.T, enforcing bool, skip string) reports.Step {
	t.Helper()
	e := fixtureEngine(t)
	expected := e.Table()
	runner := &matrix.Runner{
		Transport:   cluster{expected: expected, enforcing: enforcing},
		Convergence: -1,
		Sources:     func(ep matrix.Endpoint) bool { return ep.Name != skip },
	}
	rep, err := runner.Run(context.Background(), expected, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	return reports.StepOf("apply", rep, e, reports.Coverage{})
}

// implementationDefined returns a copy of step whose wrong cells all depend
// on ipBlock matching pod IPs, as a CNI making the other choice would show.
func implementationDefined(step reports.Step) reports.Step {
	step.Mismatches = append([]reports.Mismatch(nil), step.Mismatches...)
	for i := range step.Mismatches {
		step.Mismatches[i].ImplementationDefined = []string{matrix.ImplementationDefinedIPBlockPodIP}
	}
	step.ImplementationDefinedWrong = step.Wrong
	return step
}

// fixtureRuns returns a "reference" run that passes everything and a "none"
// run (no enforcement) where enforcement cases fail, the implementation-
// defined case diverges, one case is skipped and one is missing.
func fixtureRuns(t *testing.T) (reference, none *reports.Run) {
	t.Helper()
	good, bad := probeStep(t, true, ""), probeStep(t, false, "")
	newCase := func(id string, state string, step reports.Step, labels ...string) reports.Case {
		suite, _, _ := strings.Cut(id, "/")
		c := reports.Case{ID: id, Name: "case " + id, Suite: suite, Labels: labels,
			State: state, DurationSeconds: 1.5, Steps: []reports.Step{step}}
		if state == reports.Failed {
			c.Failure = "4 of 24 cells wrong"
		}
		return c
	}
	reference = &reports.Run{Name: "reference", CNI: "reference", Provider: "local", DurationSeconds: 61, Cases: []reports.Case{
		newCase("recipes/seed001/1.10", reports.Passed, good, "Recipe", "Ingress"),
		newCase("recipes/seed001/1.2", reports.Passed, good, "Recipe", "Ingress"),
		newCase("conformance/ipblock-pod-ip", reports.Passed, good, "Conformance", "IPBlock", reports.LabelImplementationDefined),
		newCase("conformance/sctp", reports.Passed, good, "Conformance", "SCTP"),
		newCase("generated/0042", reports.Passed, good, "Generated", "Ingress"),
	}}
	none = &reports.Run{Name: "none", CNI: "none", Provider: "local", Cases: []reports.Case{
		newCase("recipes/seed001/1.2", reports.Failed, bad, "Recipe", "Ingress"),
		newCase("recipes/seed001/1.10", reports.Failed, bad, "Recipe", "Ingress"),
		newCase("conformance/ipblock-pod-ip", reports.Failed, implementationDefined(bad), "Conformance", "IPBlock", reports.LabelImplementationDefined),
		newCase("conformance/sctp", reports.Skipped, reports.Step{}, "Conformance", "SCTP"),
	}}
	none.Cases[3].Steps = nil
	return reference, none
}
