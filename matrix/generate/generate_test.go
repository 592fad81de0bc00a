package generate_test

import (
	"reflect"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
)

func universe() generate.Universe {
	return generate.Universe{
		Namespaces:    []generate.Namespace{{Name: "x", Label: "x"}, {Name: "y", Label: "y"}, {Name: "z", Label: "z"}},
		Pods:          []string{"a", "b", "c"},
		Ports:         []generate.Port{{Port: 80, Name: "serve-80-tcp", Protocol: "TCP"}, {Port: 81, Name: "serve-81-udp", Protocol: "UDP"}, {Port: 80, Name: "serve-80-sctp", Protocol: "SCTP"}},
		PodCIDRs:      []string{"10.244.1.0/24", "10.244.2.0/24"},
		ExternalCIDR:  "192.0.2.0/24",
		ExternalHosts: []string{"192.0.2.10/32", "192.0.2.11/32"},
	}
}

func TestCasesAreDeterministicValidAndLabelled(t *testing.T) {
	a := generate.Cases(42, 300, universe())
	b := generate.Cases(42, 300, universe())
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed generated different cases")
	}
	if reflect.DeepEqual(a, generate.Cases(43, 300, universe())) {
		t.Fatal("different seeds generated the same cases")
	}
	seen := map[string]int{}
	for _, c := range a {
		for _, step := range c.Steps {
			for _, np := range step {
				if errs := matrix.ValidatePolicy(np); len(errs) > 0 {
					t.Fatalf("%s: invalid policy %s/%s: %v", c.Name, np.Namespace, np.Name, errs)
				}
			}
		}
		for _, l := range c.Labels {
			seen[l]++
		}
	}
	for _, l := range []string{generate.LabelEgress, generate.LabelNamedPort, generate.LabelEndPort, generate.LabelIPBlock,
		generate.LabelIPBlockPodIP, generate.LabelSCTP, generate.LabelUDP, generate.LabelUpdate} {
		if seen[l] < 10 {
			t.Errorf("label %s on only %d of 300 cases", l, seen[l])
		}
	}
}
