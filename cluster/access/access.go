// Package access lists the permissions the suites and `netpolcheck run`
// need in a cluster, the one place the in-cluster Job's ClusterRole is made
// from, and checks them with SelfSubjectAccessReviews before a run starts.
package access

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is what the run does to one resource, in every namespace (the
// run makes namespaces of its own and DNS-like pods in kube-system).
type Permission struct {
	Group       string
	Resource    string
	Subresource string
	Verbs       []string
	// Why says what needs it.
	Why string
}

// Name is the resource as RBAC and kubectl name it: pods/exec,
// networkpolicies.networking.k8s.io.
func (p Permission) Name() string {
	name := p.Resource
	if p.Subresource != "" {
		name += "/" + p.Subresource
	}
	if p.Group != "" {
		name += "." + p.Group
	}
	return name
}

// Permissions are the least the suites need: read from what
// suites/framework, the kube exec transport and the run's cleanup do with
// their clients.
func Permissions() []Permission {
	return []Permission{
		{Resource: "namespaces", Verbs: []string{"get", "list", "create", "patch", "delete"},
			Why: "each case's namespaces (relabelled by update steps; the run's leftovers deleted at the end)"},
		{Resource: "pods", Verbs: []string{"get", "list", "create", "patch", "delete"},
			Why: "the probe pods (relabelled by update steps) and the DNS-like pods in kube-system"},
		{Resource: "pods", Subresource: "exec", Verbs: []string{"create"},
			Why: "every probe: kube exec into the source pod's probe container"},
		{Resource: "pods", Subresource: "log", Verbs: []string{"get"},
			Why: "the logs of the cluster's own pods (CNI agents, DNS), kept in OUT/logs"},
		{Resource: "services", Verbs: []string{"get", "create"},
			Why: "the Services the recipes probe through"},
		{Resource: "nodes", Verbs: []string{"list"},
			Why: "the nodes' addresses (NodePorts, traffic between pods and nodes)"},
		{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: []string{"list"},
			Why: "waiting for a Service's endpoints"},
		{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"get", "list", "create", "update", "delete"},
			Why: "the cases' policies (and the policies in kube-system, read for DNS)"},
	}
}

// ClusterRole is the role that grants exactly Permissions.
func ClusterRole(name string) rbacv1.ClusterRole {
	role := rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	for _, p := range Permissions() {
		resource := p.Resource
		if p.Subresource != "" {
			resource += "/" + p.Subresource
		}
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{resource}, Verbs: p.Verbs})
	}
	return role
}

// Missing is one permission the credentials lack.
type Missing struct {
	Verb string
	Permission
}

func (m Missing) String() string { return m.Verb + " " + m.Name() }

// MissingError lists every permission the credentials lack.
type MissingError struct {
	User    string
	Missing []Missing
}

func (e *MissingError) Error() string {
	var lines []string
	for _, m := range e.Missing {
		lines = append(lines, fmt.Sprintf("  %s (in all namespaces): %s", m, m.Why))
	}
	return fmt.Sprintf("%s may not do what the suites need; missing permissions:\n%s\n(grant them with the ClusterRole of `netpolcheck manifest job`)",
		e.User, strings.Join(lines, "\n"))
}

// Check asks the API server, one SelfSubjectAccessReview per verb of each
// permission, whether the client's credentials may do what the suites do in
// every namespace, and returns a *MissingError naming each verb and
// resource they lack.
func Check(ctx context.Context, client kubernetes.Interface) error {
	var missing []Missing
	for _, p := range Permissions() {
		for _, verb := range p.Verbs {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Verb: verb},
			}}
			got, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("checking the permission to %s %s: %w", verb, p.Name(), err)
			}
			if !got.Status.Allowed {
				missing = append(missing, Missing{Verb: verb, Permission: p})
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	user := "these credentials"
	if review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
		user = review.Status.UserInfo.Username
	}
	return &MissingError{User: user, Missing: missing}
}
