package access

import (
	"errors"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Every verb of every permission is reviewed; the denied ones are named,
// verb and resource, in one error.
func TestCheckNamesEachMissingPermission(t *testing.T) {
	client := fake.NewClientset()
	var reviewed []string
	client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := review.Spec.ResourceAttributes
		name := attrs.Verb + " " + Permission{Group: attrs.Group, Resource: attrs.Resource, Subresource: attrs.Subresource}.Name()
		reviewed = append(reviewed, name)
		review.Status.Allowed = name != "create pods/exec" && name != "delete networkpolicies.networking.k8s.io"
		return true, review, nil
	})
	err := Check(t.Context(), client)
	var missing *MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("Check: %v, want a *MissingError", err)
	}
	var names []string
	for _, m := range missing.Missing {
		names = append(names, m.String())
	}
	if got := strings.Join(names, ", "); got != "create pods/exec, delete networkpolicies.networking.k8s.io" {
		t.Errorf("missing %s", got)
	}
	if !strings.Contains(err.Error(), "create pods/exec (in all namespaces): every probe") {
		t.Errorf("the message does not name the verb, the resource and why:\n%v", err)
	}
	verbs := 0
	for _, p := range Permissions() {
		verbs += len(p.Verbs)
	}
	if len(reviewed) != verbs {
		t.Errorf("%d reviews, want one per verb (%d): %v", len(reviewed), verbs, reviewed)
	}
}

// The ClusterRole grants exactly the permissions, rule by rule.
func TestClusterRoleIsThePermissions(t *testing.T) {
	role := ClusterRole("netpolcheck")
	perms := Permissions()
	if len(role.Rules) != len(perms) {
		t.Fatalf("%d rules for %d permissions", len(role.Rules), len(perms))
	}
	for i, r := range role.Rules {
		p := perms[i]
		want := p.Resource
		if p.Subresource != "" {
			want += "/" + p.Subresource
		}
		if len(r.APIGroups) != 1 || r.APIGroups[0] != p.Group || len(r.Resources) != 1 || r.Resources[0] != want || strings.Join(r.Verbs, ",") != strings.Join(p.Verbs, ",") {
			t.Errorf("rule %d %+v, want %s %v", i, r, p.Name(), p.Verbs)
		}
	}
}
