package deploy

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
)

func container(t *testing.T, containers []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// hostPathAt returns the host path mounted at mountPath in c.
func hostPathAt(t *testing.T, spec corev1.PodSpec, c corev1.Container, mountPath string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != mountPath {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				return v.HostPath.Path
			}
		}
	}
	t.Errorf("container %s mounts no host path at %s", c.Name, mountPath)
	return ""
}

func hasNodeNameEnv(c corev1.Container) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	})
}

func hasNetAdmin(c corev1.Container) bool {
	return c.SecurityContext != nil && c.SecurityContext.Capabilities != nil &&
		slices.Contains(c.SecurityContext.Capabilities.Add, "NET_ADMIN")
}

func TestDaemonSet(t *testing.T) {
	objs, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	ds := objs.DaemonSet
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the DaemonSet must use the node's network namespace (hostNetwork)")
	}
	if spec.ServiceAccountName != objs.ServiceAccount.Name || ds.Namespace != objs.ServiceAccount.Namespace {
		t.Errorf("pods run as %s/%s, the manifest's ServiceAccount is %s/%s",
			ds.Namespace, spec.ServiceAccountName, objs.ServiceAccount.Namespace, objs.ServiceAccount.Name)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool { return t.Operator == corev1.TolerationOpExists && t.Key == "" }) {
		t.Error("the DaemonSet must tolerate every taint: nodes stay NotReady until it runs")
	}
	selector := ds.Spec.Selector.MatchLabels
	for k, v := range selector {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("the selector %v does not match the template labels %v", selector, ds.Spec.Template.Labels)
		}
	}

	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Image != DefaultImage {
			t.Errorf("container %s uses image %q, want %q", c.Name, c.Image, DefaultImage)
		}
	}

	install := container(t, spec.InitContainers, "install-cni")
	if !slices.Contains(install.Command, "--from=/"+plugin.PluginType) {
		t.Errorf("install-cni command %v does not install /%s", install.Command, plugin.PluginType)
	}
	if dir := hostPathAt(t, spec, install, "/host/opt/cni/bin"); dir != "/opt/cni/bin" {
		t.Errorf("install-cni writes into host %s, want /opt/cni/bin", dir)
	}

	routes := container(t, spec.Containers, "routes")
	if !slices.Equal(routes.Command, []string{"/netpolcheck-routes", "--write-conflist=/etc/cni/net.d"}) {
		t.Errorf("routes command = %v", routes.Command)
	}
	if dir := hostPathAt(t, spec, routes, "/etc/cni/net.d"); dir != "/etc/cni/net.d" {
		t.Errorf("routes writes the conflist into host %s, want /etc/cni/net.d", dir)
	}

	enforcer := container(t, spec.Containers, "enforcer")
	if !slices.Equal(enforcer.Command, []string{"/netpolcheck-enforcer", "--node-name=$(NODE_NAME)"}) {
		t.Errorf("enforcer command = %v", enforcer.Command)
	}
	for _, c := range []corev1.Container{routes, enforcer} {
		if !hasNodeNameEnv(c) {
			t.Errorf("container %s lacks NODE_NAME from spec.nodeName", c.Name)
		}
		if !hasNetAdmin(c) {
			t.Errorf("container %s lacks NET_ADMIN", c.Name)
		}
	}
}

func TestRBAC(t *testing.T) {
	objs, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	allows := func(group, resource string) bool {
		return slices.ContainsFunc(objs.ClusterRole.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
				slices.Contains(r.Verbs, "get") && slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch")
		})
	}
	for _, want := range [][2]string{{"", "nodes"}, {"", "pods"}, {"", "namespaces"}, {"networking.k8s.io", "networkpolicies"}} {
		if !allows(want[0], want[1]) {
			t.Errorf("the ClusterRole does not allow get/list/watch on %q %s", want[0], want[1])
		}
	}
	if !slices.ContainsFunc(objs.ClusterRole.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "events") &&
			slices.Contains(r.Verbs, "create") && slices.Contains(r.Verbs, "get") && slices.Contains(r.Verbs, "update")
	}) {
		t.Error("the ClusterRole does not allow the enforcer to create, get and update events")
	}
	binding := objs.ClusterRoleBinding
	if binding.RoleRef.Name != objs.ClusterRole.Name || binding.RoleRef.Kind != "ClusterRole" {
		t.Errorf("the binding refers to %v, not the ClusterRole %s", binding.RoleRef, objs.ClusterRole.Name)
	}
	sa := objs.ServiceAccount
	if !slices.ContainsFunc(binding.Subjects, func(s rbacv1.Subject) bool {
		return s.Kind == "ServiceAccount" && s.Name == sa.Name && s.Namespace == sa.Namespace
	}) {
		t.Errorf("the binding's subjects %v lack the ServiceAccount %s/%s", binding.Subjects, sa.Namespace, sa.Name)
	}
}

func TestManifestImageOverride(t *testing.T) {
	objs, err := Load("registry.example/netpolcheck:test")
	if err != nil {
		t.Fatal(err)
	}
	spec := objs.DaemonSet.Spec.Template.Spec
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Image != "registry.example/netpolcheck:test" {
			t.Errorf("container %s kept image %q", c.Name, c.Image)
		}
	}
}

func TestParseRejectsBadManifests(t *testing.T) {
	cases := map[string]string{
		"unknown field": strings.Replace(manifest, "hostNetwork: true", "hostNetwork: true\n      hostNetworking: true", 1),
		"unknown kind":  manifest + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		"duplicate":     manifest + "\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: again\n",
		"missing":       strings.Split(manifest, "\n---")[0],
	}
	for name, text := range cases {
		if _, err := Parse(text); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}

// The documented example conflist is what the route agent writes for node 1.
func TestExampleConflistMatchesRouteAgent(t *testing.T) {
	example, err := os.ReadFile("conflist.example.json")
	if err != nil {
		t.Fatal(err)
	}
	ranges := []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:10:244:1::/64")}
	generated, err := plugin.Conflist(ranges, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(example) != string(generated) {
		t.Errorf("conflist.example.json is out of date; the agent writes:\n%s", generated)
	}
}
