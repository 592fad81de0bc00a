package cni

import (
	"maps"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The pinned chart itself, read from the Cilium module's zip through the Go
// toolchain (as every build here downloads modules) and rendered with the
// Helm SDK: the agent runs beside kube-proxy over a VXLAN tunnel with
// Kubernetes IPAM and no socket load-balancing, and without an L7 proxy
// no Envoy is installed.
func TestCiliumChartFromModule(t *testing.T) {
	objs := renderWith(t, "cilium", Options{KubeVersion: "v1.37.2", NoL7Proxy: true})
	config := get(t, objs, "ConfigMap", "kube-system", "cilium-config")
	data, _, err := unstructured.NestedStringMap(config.Object, "data")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ipam":                   "kubernetes",
		"routing-mode":           "tunnel",
		"tunnel-protocol":        "vxlan",
		"kube-proxy-replacement": "false",
		"bpf-lb-sock":            "false",
		"enable-l7-proxy":        "false",
		"external-envoy-proxy":   "false",
	}
	got := map[string]string{}
	for key := range want {
		got[key] = data[key]
	}
	if !maps.Equal(got, want) {
		t.Errorf("cilium-config has %v, want %v", got, want)
	}
	for _, w := range Workloads(objs) {
		if w.Name == "cilium-envoy" {
			t.Errorf("rendered %v without an L7 proxy", w)
		}
	}
	agent := containerOf(t, get(t, objs, "DaemonSet", "kube-system", "cilium"), "containers", "cilium-agent")
	if agent["image"] == nil || agent["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("agent image %v (%v)", agent["image"], agent["imagePullPolicy"])
	}
}
