package recipes_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

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
					if o.Via != nil {
						if err := r.CheckVia(o); err != nil {
							t.Errorf("step %q: %v", step.Name, err)
						}
					}
					allowed, err := o.Expected(e, r.DNSServers())
					if err != nil {
						t.Fatalf("step %q: %s: %v", step.Name, o, err)
					}
					if allowed != o.Allowed {
						x, _ := e.Explain(o.From, o.To, o.PortProtocol())
						t.Errorf("step %q: %s, but the engine says otherwise (document: %s)\n%s", step.Name, o, o.Doc, x)
					}
				}
			}
		})
	}
}

// TestServicesSelectPods checks that every Service a recipe creates selects
// at least one of its pods, in its namespace.
func TestServicesSelectPods(t *testing.T) {
	for _, r := range recipes.All() {
		for _, svc := range r.Services {
			selected := false
			for _, p := range r.Pods {
				if p.Namespace == svc.Namespace && labels.SelectorFromSet(svc.Selector).Matches(labels.Set(p.Labels)) {
					selected = true
				}
			}
			if !selected || len(svc.Selector) == 0 || len(svc.Ports) == 0 {
				t.Errorf("%s: Service %s selects no pod (selector %v, %d ports)", r.ID, svc.Key(), svc.Selector, len(svc.Ports))
			}
		}
	}
}

// TestCheckVia checks that inconsistent Via data is caught.
func TestCheckVia(t *testing.T) {
	r := recipes.Recipe{
		Pods: []matrix.Pod{{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}}},
		Services: []recipes.Service{{Namespace: "default", Name: "web", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(80)}}}},
	}
	ok := recipes.Outcome{From: "default/c", To: "default/web", Port: 80, Via: &recipes.Via{Service: "default/web", Port: 8080, By: recipes.ByName}}
	if err := r.CheckVia(ok); err != nil {
		t.Errorf("a consistent outcome: %v", err)
	}
	for name, change := range map[string]func(*recipes.Outcome){
		"unknown service": func(o *recipes.Outcome) { o.Via.Service = "default/db" },
		"unknown port":    func(o *recipes.Outcome) { o.Via.Port = 80 },
		"other target":    func(o *recipes.Outcome) { o.Port = 81 },
		"not selected":    func(o *recipes.Outcome) { o.To = "default/other" },
		"not a NodePort":  func(o *recipes.Outcome) { o.Via.By = recipes.ByNodePort; o.From = "internet" },
		"not a DNS pod":   func(o *recipes.Outcome) { o.Via.By = recipes.Lookup },
	} {
		o := ok
		v := *ok.Via
		o.Via = &v
		change(&o)
		if err := r.CheckVia(o); err == nil {
			t.Errorf("%s: no error", name)
		}
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
