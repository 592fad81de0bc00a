package matrix_test

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
)

func fuzzUniverse() generate.Universe {
	return generate.Universe{
		Namespaces: []generate.Namespace{{Name: "x", Label: "x"}, {Name: "y", Label: "y"}, {Name: "z", Label: "z"}},
		Pods:       []string{"a", "b", "c"},
		Ports: []generate.Port{
			{Port: 80, Name: "serve-80-tcp", Protocol: tcp}, {Port: 81, Name: "serve-81-udp", Protocol: udp},
			{Port: 81, Name: "serve-81-sctp", Protocol: sctp},
		},
		PodCIDRs:      []string{"10.244.1.0/24", "10.244.3.0/24"},
		ExternalCIDR:  "192.0.2.0/24",
		ExternalHosts: []string{"192.0.2.11/32"},
	}
}

// FuzzEngineInvariants checks properties that must hold for any policies:
//   - the order of policies does not matter;
//   - adding an allow rule to an isolated direction never removes an allowed cell;
//   - a deny-all policy of a direction in every namespace never adds a cell,
//     and alone it leaves only self-traffic (and traffic not involving pods
//     on that side) for that direction;
//   - the explanation of every cell agrees with the table.
//
// Run it with: go test ./matrix -run '^$' -fuzz FuzzEngineInvariants -fuzztime 60s
func FuzzEngineInvariants(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("NetworkPolicy semantics, exactly"))
	f.Add([]byte{2, 3, 3, 2, 2, 4, 4, 1, 2, 0, 3, 1, 3, 2, 1, 1, 0, 4, 2, 2, 1, 3, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := generate.New(generate.NewBytes(data), fuzzUniverse())
		var nps []*networkingv1.NetworkPolicy
		for i := range 1 + len(data)%4 {
			nps = append(nps, g.Policy("p"+string(rune('0'+i))))
		}
		model := testModel()
		base := tableOf(t, model, nps)

		reversed := slices.Clone(nps)
		slices.Reverse(reversed)
		if d := diffCells(base, tableOf(t, model, reversed)); d != "" {
			t.Fatalf("policy order changed the table at %s", d)
		}

		widened := slices.Clone(nps)
		widened[0] = g.AddRule(widened[0])
		wide := tableOf(t, model, widened)
		base.Each(func(c matrix.Cell) bool {
			if got, _ := wide.Get(c.From, c.To, c.PortProtocol()); c.Allowed && !got {
				t.Fatalf("adding a rule to %s removed %s", widened[0].Name, c)
			}
			return true
		})

		for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			denyAll := denyAllPolicies(dir)
			narrowed := tableOf(t, model, append(slices.Clone(nps), denyAll...))
			narrowed.Each(func(c matrix.Cell) bool {
				if was, _ := base.Get(c.From, c.To, c.PortProtocol()); c.Allowed && !was {
					t.Fatalf("adding deny-all %s allowed %s", dir, c)
				}
				return true
			})
			tableOf(t, model, denyAll).Each(func(c matrix.Cell) bool {
				from, to := parseEndpoint(c.From), parseEndpoint(c.To)
				restricted := (dir == networkingv1.PolicyTypeIngress && !to.external()) || (dir == networkingv1.PolicyTypeEgress && !from.external())
				if want := c.From == c.To || !restricted; c.Allowed != want {
					t.Fatalf("deny-all %s alone: %s allowed=%v, want %v", dir, c, c.Allowed, want)
				}
				return true
			})
		}

		e := engine(t, model, nps)
		base.Each(func(c matrix.Cell) bool {
			x, err := e.Explain(c.From, c.To, c.PortProtocol())
			if err != nil || x.Allowed != c.Allowed {
				t.Fatalf("%s: table says %v, explanation %v (err %v)", c, c.Allowed, x, err)
			}
			return true
		})
	})
}

func tableOf(t *testing.T, m *matrix.Model, nps []*networkingv1.NetworkPolicy) *matrix.Table {
	t.Helper()
	return engine(t, m, nps).Table()
}

func denyAllPolicies(dir networkingv1.PolicyType) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, ns := range []string{"x", "y", "z"} {
		out = append(out, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "deny-all-" + strings.ToLower(string(dir)), Namespace: ns},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{dir}},
		})
	}
	return out
}

// diffCells returns the first cell where the tables differ, or "".
func diffCells(a, b *matrix.Table) string {
	mismatches, err := matrix.Diff(a, b)
	if err != nil {
		return err.Error()
	}
	if len(mismatches) > 0 {
		return mismatches[0].Cell.String()
	}
	return ""
}
