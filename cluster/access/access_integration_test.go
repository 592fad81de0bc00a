package access

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
)

// Against a real API server's RBAC (the local cluster's control plane on
// loopback, no nodes): a service account bound to ClusterRole passes the
// check, and the same role without pods/exec fails it, naming exactly that.
func TestCheckAgainstRealRBAC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	bins, err := controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{SourceDir: "../local/kubebin", Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() {
		if err := controlplane.Reap(context.Background(), stateDir); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	cp, err := controlplane.Start(ctx, controlplane.Config{StateDir: stateDir, Binaries: bins})
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(cp.RESTConfig())

	for _, tc := range []struct {
		name        string
		drop        string // a rule's resource taken out of the role
		wantMissing []string
	}{
		{name: "whole"},
		{name: "without-exec", drop: "pods/exec", wantMissing: []string{"create pods/exec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role := ClusterRole("netpolcheck-" + tc.name)
			role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, tc.drop) })
			if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: "default"}}
			if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			binding := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: "default"}},
			}
			if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			token, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := rest.AnonymousClientConfig(cp.RESTConfig())
			cfg.BearerToken = token.Status.Token
			client := kubernetes.NewForConfigOrDie(cfg)
			// The authorizer sees a new binding within moments.
			var last error
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
				last = Check(ctx, client)
				var missing *MissingError
				if last == nil && tc.wantMissing == nil {
					return
				}
				if errors.As(last, &missing) {
					var got []string
					for _, m := range missing.Missing {
						got = append(got, m.String())
					}
					if slices.Equal(got, tc.wantMissing) {
						if missing.User != "system:serviceaccount:default:"+sa.Name {
							t.Errorf("the message names %q, want the service account", missing.User)
						}
						t.Logf("%v", last)
						return
					}
				}
			}
			t.Errorf("Check: %v; want missing %v", last, tc.wantMissing)
		})
	}
}
