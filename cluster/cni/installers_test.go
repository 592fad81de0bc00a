package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

const (
	testImage   = "registry.example/netpolcheck:test"
	testPodCIDR = "10.123.0.0/16"
)

// fixtures serves testdata files by upstream URL and records what was
// fetched.
type fixtures struct {
	files   map[string]string // URL -> testdata file
	fetched []string
}

func (f *fixtures) fetch(_ context.Context, url string) ([]byte, error) {
	f.fetched = append(f.fetched, url)
	file, ok := f.files[url]
	if !ok {
		return nil, errors.New("no fixture for " + url)
	}
	return os.ReadFile(filepath.Join("testdata", file))
}

// chartModule serves testdata/cilium-chart as the chart directory of the
// Cilium module's zip, beside a file outside it, and records which module
// was read.
type chartModule struct{ read []gomodule.Module }

func (c *chartModule) readFiles(_ context.Context, m gomodule.Module, keep func(string) bool) (map[string][]byte, error) {
	c.read = append(c.read, m)
	files := map[string][]byte{}
	root := filepath.Join("testdata", "cilium-chart")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		files[ciliumChartDir+"/"+filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		return nil, err
	}
	files["bpf/bpf_lxc.c"] = []byte("not a chart file")
	for name := range files {
		if !keep(name) {
			delete(files, name)
		}
	}
	return files, nil
}

func upstreamFixtures() *fixtures {
	return &fixtures{files: map[string]string{
		CalicoManifestURL:     "calico.yaml",
		CanalManifestURL:      "canal.yaml",
		KubeRouterManifestURL: "kubeadm-kuberouter.yaml",
	}}
}

func render(t *testing.T, name string, f *fixtures, chart *chartModule) []*unstructured.Unstructured {
	t.Helper()
	return renderWith(t, name, Options{Image: testImage, PodCIDR: testPodCIDR, KubeVersion: "v1.37.0", Fetch: f.fetch, ReadModuleFiles: chart.readFiles})
}

func renderWith(t *testing.T, name string, opts Options) []*unstructured.Unstructured {
	t.Helper()
	inst, err := New(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Name() != name {
		t.Errorf("Name() = %q, want %q", inst.Name(), name)
	}
	objs, err := inst.Manifests(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return objs
}

func get(t *testing.T, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, namespace, name)
	if o == nil {
		t.Fatalf("no %s %s/%s among the rendered objects", kind, namespace, name)
	}
	return o
}

func containerOf(t *testing.T, workload *unstructured.Unstructured, field, name string) map[string]any {
	t.Helper()
	containers, err := podContainers(workload, field)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s has no %s %q", workload.GetName(), field, name)
	return nil
}

func envValues(c map[string]any, name string) []string {
	var values []string
	env, _ := c["env"].([]any)
	for _, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			v, _ := m["value"].(string)
			values = append(values, v)
		}
	}
	return values
}

func netConf(t *testing.T, cm *unstructured.Unstructured) map[string]any {
	t.Helper()
	text, _, _ := unstructured.NestedString(cm.Object, "data", "net-conf.json")
	var conf map[string]any
	if err := json.Unmarshal([]byte(text), &conf); err != nil {
		t.Fatalf("net-conf.json after patching: %v\n%s", err, text)
	}
	return conf
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetName())
	}
	return out
}

func TestRenderedManifests(t *testing.T) {
	cases := []struct {
		name          string
		wantFetched   []string
		wantWorkloads []Workload
		check         func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{
			name:        "calico",
			wantFetched: []string{CalicoManifestURL},
			wantWorkloads: []Workload{
				{"DaemonSet", "kube-system", "calico-node"},
				{"Deployment", "kube-system", "calico-kube-controllers"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				node := containerOf(t, get(t, objs, "DaemonSet", "kube-system", "calico-node"), "containers", "calico-node")
				if got := envValues(node, "CALICO_IPV4POOL_CIDR"); !slices.Equal(got, []string{testPodCIDR}) {
					t.Errorf("CALICO_IPV4POOL_CIDR = %v, want [%s]", got, testPodCIDR)
				}
				for name, want := range map[string]string{"DATASTORE_TYPE": "kubernetes", "CALICO_IPV4POOL_IPIP": "Always", "FELIX_HEALTHENABLED": "true"} {
					if got := envValues(node, name); !slices.Equal(got, []string{want}) {
						t.Errorf("%s = %v, want it kept as [%s]", name, got, want)
					}
				}
				if len(objs) != 4 {
					t.Errorf("rendered %v, want the fixture's 4 objects", kinds(objs))
				}
			},
		},
		{
			name:        "canal",
			wantFetched: []string{CanalManifestURL},
			wantWorkloads: []Workload{
				{"DaemonSet", "kube-system", "canal"},
				{"Deployment", "kube-system", "calico-kube-controllers"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				conf := netConf(t, get(t, objs, "ConfigMap", "kube-system", "canal-config"))
				if conf["Network"] != testPodCIDR {
					t.Errorf("net-conf Network = %v, want %s", conf["Network"], testPodCIDR)
				}
				backend, _ := conf["Backend"].(map[string]any)
				if backend["Type"] != "vxlan" || backend["VNI"] != 4096.0 || backend["Port"] != 8472.0 {
					t.Errorf("net-conf Backend = %v, want it kept", backend)
				}
			},
		},
		{
			name:        "kube-router",
			wantFetched: []string{KubeRouterManifestURL},
			wantWorkloads: []Workload{
				{"DaemonSet", "kube-system", "kube-router"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				ds := get(t, objs, "DaemonSet", "kube-system", "kube-router")
				for _, c := range []map[string]any{containerOf(t, ds, "containers", "kube-router"), containerOf(t, ds, "initContainers", "install-cni")} {
					if c["image"] != KubeRouterImage || c["imagePullPolicy"] != "IfNotPresent" {
						t.Errorf("%s runs %v (%v), want %s (IfNotPresent)", c["name"], c["image"], c["imagePullPolicy"], KubeRouterImage)
					}
				}
				if sidecar := containerOf(t, ds, "containers", "sidecar"); sidecar["image"] != "docker.io/library/busybox:1.37" {
					t.Errorf("a container that is not kube-router's was changed: %v", sidecar["image"])
				}
			},
		},
		{
			name: "cilium",
			wantWorkloads: []Workload{
				{"DaemonSet", "kube-system", "cilium"},
				{"DaemonSet", "kube-system", "cilium-envoy"},
				{"Deployment", "kube-system", "cilium-operator"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				want := []string{"ServiceAccount cilium", "ConfigMap cilium-config", "DaemonSet cilium", "DaemonSet cilium-envoy", "Deployment cilium-operator"}
				if got := kinds(objs); !slices.Equal(got, want) {
					t.Errorf("rendered %v, want %v (in Helm's install order, without empty documents or test hooks)", got, want)
				}
			},
		},
		{
			name: "reference",
			wantWorkloads: []Workload{
				{"DaemonSet", "kube-system", "netpolcheck-node"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				want := []string{"ServiceAccount netpolcheck-node", "ClusterRole netpolcheck-node", "ClusterRoleBinding netpolcheck-node", "DaemonSet netpolcheck-node"}
				if got := kinds(objs); !slices.Equal(got, want) {
					t.Errorf("rendered %v, want %v", got, want)
				}
				ds := get(t, objs, "DaemonSet", "kube-system", "netpolcheck-node")
				for _, field := range []string{"initContainers", "containers"} {
					containers, err := podContainers(ds, field)
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range containers {
						if c["image"] != testImage {
							t.Errorf("%s %v runs %v, want %s", field, c["name"], c["image"], testImage)
						}
					}
				}
			},
		},
		{
			name: "none",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if len(objs) != 0 {
					t.Errorf("none rendered %v", kinds(objs))
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := upstreamFixtures()
			objs := render(t, tc.name, f, &chartModule{})
			if !slices.Equal(f.fetched, tc.wantFetched) {
				t.Errorf("fetched %v, want %v", f.fetched, tc.wantFetched)
			}
			if got := Workloads(objs); !slices.Equal(got, tc.wantWorkloads) {
				t.Errorf("workloads = %v, want %v", got, tc.wantWorkloads)
			}
			tc.check(t, objs)
		})
	}
}

// The chart is read from the pinned Cilium module and rendered with the
// installer's values for the cluster's Kubernetes version; without an L7
// proxy the agent's proxy and the Envoy DaemonSet are off.
func TestCiliumChartValues(t *testing.T) {
	cases := []struct {
		name      string
		noL7Proxy bool
		l7Proxy   string
		envoy     bool
	}{
		{name: "kind", l7Proxy: "true", envoy: true},
		{name: "no L7 proxy", noL7Proxy: true, l7Proxy: "false", envoy: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chart := &chartModule{}
			objs := renderWith(t, "cilium", Options{KubeVersion: "v1.37.0", NoL7Proxy: tc.noL7Proxy, ReadModuleFiles: chart.readFiles})
			if want := []gomodule.Module{CiliumModule()}; !slices.Equal(chart.read, want) {
				t.Errorf("read modules %v, want %v", chart.read, want)
			}
			config := get(t, objs, "ConfigMap", "kube-system", "cilium-config")
			data, _, _ := unstructured.NestedStringMap(config.Object, "data")
			want := map[string]string{"ipam": "kubernetes", "enable-l7-proxy": tc.l7Proxy, "rendered-for": "v1.37.0"}
			if !maps.Equal(data, want) {
				t.Errorf("cilium-config %v, want %v", data, want)
			}
			agent := containerOf(t, get(t, objs, "DaemonSet", "kube-system", "cilium"), "containers", "cilium-agent")
			if agent["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("agent imagePullPolicy %v, want IfNotPresent", agent["imagePullPolicy"])
			}
			replicas, _, err := unstructured.NestedFieldNoCopy(get(t, objs, "Deployment", "kube-system", "cilium-operator").Object, "spec", "replicas")
			if err != nil || fmt.Sprint(replicas) != "1" {
				t.Errorf("operator replicas %v (%v), want 1", replicas, err)
			}
			if got := slices.Contains(Workloads(objs), Workload{"DaemonSet", "kube-system", "cilium-envoy"}); got != tc.envoy {
				t.Errorf("cilium-envoy DaemonSet rendered: %v, want %v", got, tc.envoy)
			}
		})
	}
}

func TestCalicoReplacesAnExistingPoolCIDR(t *testing.T) {
	c := &calico{opts: Options{PodCIDR: testPodCIDR}}
	objs, err := Decode([]byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: calico-node, namespace: kube-system}
spec:
  template:
    spec:
      containers:
      - name: calico-node
        env:
        - {name: CALICO_IPV4POOL_CIDR, value: 192.168.0.0/16}
        - {name: OTHER, value: x}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: calico-kube-controllers, namespace: kube-system}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.patch(objs); err != nil {
		t.Fatal(err)
	}
	node := containerOf(t, objs[0], "containers", "calico-node")
	if got := envValues(node, "CALICO_IPV4POOL_CIDR"); !slices.Equal(got, []string{testPodCIDR}) {
		t.Errorf("CALICO_IPV4POOL_CIDR = %v, want it replaced by [%s]", got, testPodCIDR)
	}
	if got := envValues(node, "OTHER"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("OTHER = %v, want it kept", got)
	}
}

// An upstream manifest whose layout no longer has what an installer patches
// fails with an error saying so, instead of installing it unpatched.
func TestUpstreamLayoutChanges(t *testing.T) {
	cases := []struct {
		name, url, manifest, want string
	}{
		{"calico", CalicoManifestURL, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: calico-config, namespace: kube-system}\n", "no DaemonSet kube-system/calico-node"},
		{"calico", CalicoManifestURL, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: calico-node, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: node}]}}}\n", `no container "calico-node"`},
		{"canal", CanalManifestURL, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: canal-config, namespace: kube-system}\ndata: {masquerade: \"true\"}\n", "no data.net-conf.json"},
		{"canal", CanalManifestURL, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: canal-config, namespace: kube-system}\ndata: {net-conf.json: \"{not json\"}\n", "net-conf.json"},
		{"kube-router", KubeRouterManifestURL, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-router, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: kube-router, image: docker.io/cloudnativelabs/kube-router}], initContainers: [{name: install-cni, image: busybox}]}}}\n", "no install-cni init container"},
		{"calico", CalicoManifestURL, "kind: ConfigMap\nmetadata: {name: x}\n", "no apiVersion or kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			inst, err := New(tc.name, Options{Fetch: func(context.Context, string) ([]byte, error) { return []byte(tc.manifest), nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = inst.Manifests(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFetchAndModuleErrorsAreWrapped(t *testing.T) {
	failing := Options{
		Fetch: func(_ context.Context, url string) ([]byte, error) {
			return nil, errors.New("fetching " + url + ": 404 Not Found")
		},
		ReadModuleFiles: func(context.Context, gomodule.Module, func(string) bool) (map[string][]byte, error) {
			return nil, errors.New("module zip hash mismatch")
		},
		ReadModuleFile: func(context.Context, gomodule.Module, string) ([]byte, error) {
			return nil, errors.New("module zip hash mismatch")
		},
	}
	for _, name := range []string{"calico", "canal", "flannel", "kube-router", "cilium"} {
		inst, err := New(name, failing)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inst.Manifests(context.Background()); err == nil || !(strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "module zip hash mismatch")) {
			t.Errorf("%s: error %v, want the fetch or module failure", name, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	want := []string{"calico", "canal", "cilium", "flannel", "kube-router", "none", "reference"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	enforcing := map[string]bool{"calico": true, "canal": true, "cilium": true, "flannel": false, "kube-router": true, "none": false, "reference": true}
	for _, name := range want {
		inst, err := New(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if inst.EnforcesPolicy() != enforcing[name] {
			t.Errorf("%s: EnforcesPolicy() = %v", name, inst.EnforcesPolicy())
		}
		if inst.Source() == "" {
			t.Errorf("%s: empty Source()", name)
		}
	}
	ref, _ := New("reference", Options{})
	if !strings.Contains(ref.Source(), deploy.DefaultImage) {
		t.Errorf("reference source %q does not name the default image", ref.Source())
	}
	errorCases := []struct {
		name string
		opts Options
		want string
	}{
		{"weave", Options{}, "unknown CNI \"weave\": want one of calico, canal, cilium, flannel, kube-router, none, reference"},
		{"calico", Options{PodCIDR: "10.244.1.0/16"}, "pod CIDR \"10.244.1.0/16\""},
		{"calico", Options{PodCIDR: "banana"}, "pod CIDR \"banana\""},
	}
	for _, tc := range errorCases {
		if _, err := New(tc.name, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v): error %v, want %q", tc.name, tc.opts, err, tc.want)
		}
	}
}
