package recipes_test

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
)

// TestRecipes runs every recipe of the four seed documents through the engine,
// step by step, and checks each outcome the document states (or, where the
// document is wrong, the corrected outcome the step carries).
func TestRecipes(t *testing.T) {
	for _, r := range recipes.All() {
		t.Run(r.ID, func(t *testing.T) {
			model := r.Model()
			var inForce []*networkingv1.NetworkPolicy
			for _, step := range r.Steps {
				next, err := step.Policies(inForce)
				switch {
				case step.Rejected != "":
					if err == nil || !strings.Contains(err.Error(), step.Rejected) {
						t.Fatalf("step %q: want a rejection containing %q, got %v", step.Name, step.Rejected, err)
					}
					t.Logf("step %q rejected as it must be: %v", step.Name, err)
					next = inForce
				case err != nil:
					t.Fatalf("step %q: %v", step.Name, err)
				}
				inForce = next
				e, err := matrix.NewEngine(model, inForce)
				if err != nil {
					t.Fatalf("step %q: %v", step.Name, err)
				}
				if len(step.Expect) == 0 {
					t.Fatalf("step %q states no outcome", step.Name)
				}
				for _, o := range step.Expect {
					x, err := e.Explain(o.From, o.To, o.PortProtocol())
					if err != nil {
						t.Fatalf("step %q: %s: %v", step.Name, o, err)
					}
					if x.Allowed != o.Allowed {
						t.Errorf("step %q: %s, but the engine says otherwise (document: %s)\n%s", step.Name, o, o.Doc, x)
					}
				}
			}
		})
	}
}

func TestCatalogueCoversTheSeeds(t *testing.T) {
	ids := map[string]bool{}
	for _, r := range recipes.All() {
		if ids[r.ID] {
			t.Errorf("duplicate recipe ID %s", r.ID)
		}
		ids[r.ID] = true
	}
	for _, want := range []string{
		"seed001/walkthrough", "seed002/walkthrough",
		"seed003/deny-all-ingress", "seed003/allow-nginx-from-frontend", "seed003/allow-dns-https-egress",
		"seed003/allow-frontend-to-backend", "seed003/allow-egress-dns-https",
		"seed004/2-sample", "seed004/3-or-peers",
		"seed004/4.1", "seed004/4.2", "seed004/4.3", "seed004/4.4", "seed004/4.5",
		"seed004/5.1", "seed004/5.2", "seed004/5.3", "seed004/5.4", "seed004/5.5-deny-other-namespaces",
		"seed004/5.5-allow-all-namespaces", "seed004/5.6", "seed004/5.7", "seed004/5.8", "seed004/5.9",
		"seed004/5.9-named-port", "seed004/5.10", "seed004/5.11", "seed004/5.12", "seed004/5.13",
	} {
		if !ids[want] {
			t.Errorf("no recipe %s", want)
		}
	}
}
