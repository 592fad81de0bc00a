package cni

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

// The Flannel installer reads the pinned module's own manifest (from the
// module zip the Go toolchain downloads, checked against the pinned hash),
// sets the cluster's pod network, and on kind installs the bridge plugin
// from the netpolcheck image before Flannel's own init containers.
func TestFlannelFromModule(t *testing.T) {
	objs := renderWith(t, "flannel", Options{Image: testImage, PodCIDR: testPodCIDR})
	if got := Workloads(objs); !slices.Equal(got, []Workload{{"DaemonSet", "kube-flannel", "kube-flannel-ds"}}) {
		t.Errorf("workloads %v", got)
	}
	conf := netConf(t, get(t, objs, "ConfigMap", "kube-flannel", "kube-flannel-cfg"))
	backend, _ := conf["Backend"].(map[string]any)
	if conf["Network"] != testPodCIDR || conf["EnableNFTables"] != false || backend["Type"] != FlannelVXLAN {
		t.Errorf("net-conf = %v, want Network %s and the rest kept (vxlan)", conf, testPodCIDR)
	}
	ds := get(t, objs, "DaemonSet", "kube-flannel", "kube-flannel-ds")
	inits, err := podContainers(ds, "initContainers")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range inits {
		names = append(names, c["name"].(string))
	}
	if !slices.Equal(names, []string{bridgeInitContainer, "install-cni-plugin", "install-cni"}) {
		t.Fatalf("init containers = %v, want the bridge installer first, then flannel's", names)
	}
	bridge := inits[0]
	if bridge["image"] != testImage || bridge["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("bridge installer runs %v (%v), want %s (IfNotPresent)", bridge["image"], bridge["imagePullPolicy"], testImage)
	}
	wantCmd := []any{"/netpolcheck-routes", "install-cni", "--from=" + BridgePluginPath, "--to=/host/opt/cni/bin"}
	if !slices.Equal(bridge["command"].([]any), wantCmd) {
		t.Errorf("bridge installer command = %v, want %v", bridge["command"], wantCmd)
	}
	mounts, _ := bridge["volumeMounts"].([]any)
	if len(mounts) != 1 || mounts[0].(map[string]any)["name"] != "cni-plugin" || mounts[0].(map[string]any)["mountPath"] != "/host/opt/cni/bin" {
		t.Errorf("bridge installer mounts %v, want the cni-plugin volume (host /opt/cni/bin) at /host/opt/cni/bin", mounts)
	}
	installConf := containerOf(t, ds, "initContainers", "install-cni")
	if args, _ := installConf["args"].([]any); !slices.Contains(args, any(FlannelConflist)) {
		t.Errorf("install-cni writes %v, want %s", args, FlannelConflist)
	}
	flanneld := containerOf(t, ds, "containers", flanneldContainer)
	if args, _ := flanneld["args"].([]any); !slices.Contains(args, any("--kube-subnet-mgr")) || slices.ContainsFunc(args, func(a any) bool { return strings.HasPrefix(a.(string), "--iface") }) {
		t.Errorf("flanneld args %v, want --kube-subnet-mgr and no --iface", args)
	}
}

// The local cluster's options: the nodes have the plugins, flanneld uses
// the node's underlay interface, and the backend can be host-gw.
func TestFlannelLocalOptions(t *testing.T) {
	objs := renderWith(t, "flannel", Options{NodeCNIPlugins: true, FlannelInterface: "eth0", FlannelBackend: FlannelHostGW})
	ds := get(t, objs, "DaemonSet", "kube-flannel", "kube-flannel-ds")
	inits, err := podContainers(ds, "initContainers")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range inits {
		if c["name"] == bridgeInitContainer {
			t.Errorf("the bridge installer was added though the nodes have the plugins")
		}
	}
	flanneld := containerOf(t, ds, "containers", flanneldContainer)
	if args, _ := flanneld["args"].([]any); !slices.Contains(args, any("--iface=eth0")) || !slices.Contains(args, any("--ip-masq")) {
		t.Errorf("flanneld args %v, want the manifest's and --iface=eth0", args)
	}
	conf := netConf(t, get(t, objs, "ConfigMap", "kube-flannel", "kube-flannel-cfg"))
	if backend, _ := conf["Backend"].(map[string]any); backend["Type"] != FlannelHostGW || conf["Network"] != DefaultPodCIDR {
		t.Errorf("net-conf = %v, want Backend host-gw on %s", conf, DefaultPodCIDR)
	}
	inst, err := New("flannel", Options{FlannelBackend: "udp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Manifests(context.Background()); err == nil || !strings.Contains(err.Error(), `backend "udp"`) {
		t.Errorf("backend udp: error %v", err)
	}
}

func TestFlannelLayoutChanges(t *testing.T) {
	for _, tc := range []struct{ manifest, want string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-flannel-cfg, namespace: kube-flannel}\ndata: {net-conf.json: \"{}\"}\n", "no DaemonSet kube-flannel/kube-flannel-ds"},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-flannel-cfg, namespace: kube-flannel}\ndata: {net-conf.json: \"{}\"}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-flannel-ds, namespace: kube-flannel}\nspec: {template: {spec: {containers: [{name: kube-flannel}]}}}\n", "no volume for host /opt/cni/bin"},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-flannel-cfg, namespace: kube-flannel}\ndata: {net-conf.json: \"{}\"}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-flannel-ds, namespace: kube-flannel}\nspec: {template: {spec: {containers: [{name: flanneld}]}}}\n", `no container "kube-flannel"`},
	} {
		var read []gomodule.Module
		inst, err := New("flannel", Options{ReadModuleFile: func(_ context.Context, m gomodule.Module, name string) ([]byte, error) {
			read = append(read, m)
			if name != FlannelManifest {
				t.Errorf("read %s, want %s", name, FlannelManifest)
			}
			return []byte(tc.manifest), nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inst.Manifests(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
		if !slices.Equal(read, []gomodule.Module{FlannelModule}) {
			t.Errorf("read modules %v, want the pin %v", read, FlannelModule)
		}
	}
}
