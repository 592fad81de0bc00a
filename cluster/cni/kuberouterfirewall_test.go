package cni

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

// The firewall installer reads the pinned module's own manifest (from the
// module zip the Go toolchain downloads, checked against the pinned hash)
// and runs kube-router as a policy controller alone, image pinned to the
// module's version.
func TestKubeRouterFirewallFromModule(t *testing.T) {
	inst, err := KubeRouterFirewall(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !inst.EnforcesPolicy() || !strings.Contains(inst.Source(), "github.com/cloudnativelabs/kube-router/v2@v2.1.0") {
		t.Errorf("EnforcesPolicy %v, Source %q", inst.EnforcesPolicy(), inst.Source())
	}
	objs, err := inst.Manifests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := Workloads(objs); !slices.Equal(got, []Workload{{"DaemonSet", "kube-system", "kube-router"}}) {
		t.Errorf("workloads %v", got)
	}
	get(t, objs, "ConfigMap", "kube-system", "kube-router-cfg")
	ds := get(t, objs, "DaemonSet", "kube-system", "kube-router")
	for _, c := range []map[string]any{containerOf(t, ds, "containers", "kube-router"), containerOf(t, ds, "initContainers", "install-cni")} {
		if c["image"] != "docker.io/cloudnativelabs/kube-router:v2.1.0" || c["imagePullPolicy"] != "IfNotPresent" {
			t.Errorf("%s runs %v (%v), want kube-router:v2.1.0 IfNotPresent", c["name"], c["image"], c["imagePullPolicy"])
		}
	}
	kr := containerOf(t, ds, "containers", "kube-router")
	args, _ := kr["args"].([]any)
	for _, want := range append(slices.Clone(kubeRouterFirewallArgs), "--kubeconfig=/var/lib/kube-router/kubeconfig") {
		if !slices.Contains(args, any(want)) {
			t.Errorf("kube-router args %v lack %s", args, want)
		}
	}
	if got := envValues(kr, "KUBE_ROUTER_CNI_CONF_FILE"); !slices.Equal(got, []string{KubeRouterFirewallConflist}) {
		t.Errorf("KUBE_ROUTER_CNI_CONF_FILE = %q, want %s", got, KubeRouterFirewallConflist)
	}
}

func TestKubeRouterFirewallLayoutChanges(t *testing.T) {
	for _, tc := range []struct{ manifest, want string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-router-cfg, namespace: kube-system}\n", "no DaemonSet kube-system/kube-router"},
		{"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-router, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: router}]}}}\n", `no container "kube-router"`},
		{"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-router, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: kube-router, args: [--run-router=true, --run-firewall=true, --run-service-proxy=false]}]}}}\n", "without --run-router=false"},
	} {
		var read []gomodule.Module
		inst, err := KubeRouterFirewall(Options{ReadModuleFile: func(_ context.Context, m gomodule.Module, name string) ([]byte, error) {
			read = append(read, m)
			if name != KubeRouterFirewallManifest {
				t.Errorf("read %s, want %s", name, KubeRouterFirewallManifest)
			}
			return []byte(tc.manifest), nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inst.Manifests(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
		if !slices.Equal(read, []gomodule.Module{KubeRouterFirewallModule}) {
			t.Errorf("read modules %v, want the pin %v", read, KubeRouterFirewallModule)
		}
	}
}
