package kind

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"k8s.io/client-go/tools/clientcmd"
)

const testImage = "ghcr.io/netpolcheck/netpolcheck:test"

func testOptions(t *testing.T, tools string) Options {
	t.Helper()
	return Options{
		Name:       "npc-test",
		Workers:    2,
		CNI:        "none",
		Image:      testImage,
		StateDir:   filepath.Join(t.TempDir(), "state"),
		KindBinary: filepath.Join(tools, "kind"),
		CacheDir:   t.TempDir(),
	}
}

// Up, Down and ExportLogs drive the kind binary through the e2e-framework:
// with a fake kind and a fake engine, everything up to the point that needs
// a real engine runs (the CNI is "none", so no API server is contacted).
func TestUpDownWithFakeKind(t *testing.T) {
	tools := fakeTools(t)
	t.Setenv("FAKE_ENGINE_UP", "1")
	t.Setenv("FAKE_ENGINE_IMAGES", testImage)
	opts := testOptions(t, tools)
	var progress bytes.Buffer
	opts.Progress = &progress

	c, err := Up(context.Background(), opts)
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, progress.String())
	}
	want := &Cluster{Name: "npc-test", StateDir: opts.StateDir, Kubeconfig: filepath.Join(opts.StateDir, KubeconfigFile), CNI: "none", Image: testImage}
	if *c != *want {
		t.Errorf("Up returned %+v, want %+v", c, want)
	}
	kubeconfig, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil || kubeconfig.CurrentContext != "kind-npc-test" {
		t.Errorf("kubeconfig %s: %v (context %q)", c.Kubeconfig, err, kubeconfig.CurrentContext)
	}
	if info, err := os.Stat(c.Kubeconfig); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v (%v), want 0600: it holds admin credentials", info.Mode().Perm(), err)
	}
	// kind got the config Up generated.
	data, err := os.ReadFile(filepath.Join(tools, "state", "config-npc-test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil || len(cfg.Nodes) != 3 || !cfg.Networking.DisableDefaultCNI {
		t.Errorf("kind got config %s (%v)", data, err)
	}
	calls := kindCalls(t, tools)
	wantCalls := []string{
		"get clusters",
		"create cluster --name npc-test --config " + filepath.Join(opts.StateDir, ConfigFile) + " --kubeconfig " + c.Kubeconfig,
		"get clusters",
		"get kubeconfig --name npc-test",
		"load docker-image --name npc-test " + testImage,
	}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("kind calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	for _, line := range []string{"creating cluster npc-test (1 control-plane node, 2 workers", "loading " + testImage, "cni none: nothing to apply", "pods get no IPs"} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, progress.String())
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "kind-cluster-npc-test-kubecfg*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary kubeconfigs left behind: %v", leftovers)
	}

	// A second Up with the same CNI reuses the cluster; another CNI is refused.
	if _, err := Up(context.Background(), opts); err != nil {
		t.Errorf("second Up: %v", err)
	}
	other := opts
	other.CNI = "calico"
	if _, err := Up(context.Background(), other); err == nil || !strings.Contains(err.Error(), "already runs CNI none: take it down first") {
		t.Errorf("Up with another CNI: %v", err)
	}

	logs := filepath.Join(t.TempDir(), "logs")
	if err := ExportLogs(context.Background(), opts, logs); err != nil {
		t.Errorf("ExportLogs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logs, "kind-version.txt")); err != nil {
		t.Errorf("no logs exported: %v", err)
	}

	if err := Down(context.Background(), opts); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := os.Stat(opts.StateDir); !os.IsNotExist(err) {
		t.Errorf("the state directory survived Down: %v", err)
	}
	if calls := kindCalls(t, tools); calls[len(calls)-1] != "delete cluster --name npc-test" {
		t.Errorf("last kind call %q, want the delete", calls[len(calls)-1])
	}
	if err := Down(context.Background(), opts); err != nil {
		t.Errorf("Down of a deleted cluster: %v", err)
	}
}

func TestUpErrors(t *testing.T) {
	cases := []struct {
		name     string
		engineUp bool
		images   string
		edit     func(*Options)
		want     string
	}{
		{name: "no engine", want: "kind needs a Docker (or podman) engine: docker not reachable: Cannot connect to the Docker daemon"},
		{name: "podman missing", edit: func(o *Options) { t.Setenv(EngineEnv, "podman") }, want: "kind needs a Docker (or podman) engine: podman not found on PATH"},
		{name: "image not built", engineUp: true, want: "image " + testImage + " is not in the local docker engine (Error response from daemon: No such image: " + testImage + "): build it with `make image`"},
		{name: "unknown CNI", edit: func(o *Options) { o.CNI = "weave" }, want: `unknown CNI "weave"`},
		{name: "latest image", edit: func(o *Options) { o.Image = "ghcr.io/netpolcheck/netpolcheck:latest" }, want: "give it a tag other than latest"},
		{name: "untagged image", edit: func(o *Options) { o.Image = "localhost:5000/netpolcheck" }, want: "give it a tag other than latest"},
		{name: "bad name", edit: func(o *Options) { o.Name = "Bad_Name" }, want: `cluster name "Bad_Name"`},
		{name: "negative workers", edit: func(o *Options) { o.Workers = -1 }, want: "-1 workers"},
		{name: "state dir with a space", edit: func(o *Options) { o.StateDir = "/tmp/my state" }, want: "spaces, quotes and $ are not supported"},
		{name: "missing kind binary", engineUp: true, edit: func(o *Options) { o.KindBinary = "/nonexistent/kind" }, want: "kind binary /nonexistent/kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tools := fakeTools(t)
			if tc.engineUp {
				t.Setenv("FAKE_ENGINE_UP", "1")
			}
			t.Setenv("FAKE_ENGINE_IMAGES", tc.images)
			opts := testOptions(t, tools)
			if tc.edit != nil {
				tc.edit(&opts)
			}
			_, err := Up(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

func TestDownAndLogsNeedAnEngine(t *testing.T) {
	tools := fakeTools(t)
	opts := testOptions(t, tools)
	want := "kind needs a Docker (or podman) engine: docker not reachable"
	if err := Down(context.Background(), opts); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Down: %v", err)
	}
	if err := ExportLogs(context.Background(), opts, t.TempDir()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ExportLogs: %v", err)
	}
	if calls := kindCalls(t, tools); len(calls) != 0 {
		t.Errorf("kind ran without an engine: %v", calls)
	}
}

func TestCheckImageTag(t *testing.T) {
	cases := map[string]bool{
		"ghcr.io/netpolcheck/netpolcheck:dev":         true,
		"localhost:5000/netpolcheck:v1":               true,
		"ghcr.io/netpolcheck/netpolcheck@sha256:0abc": true,
		"ghcr.io/netpolcheck/netpolcheck:latest":      false,
		"ghcr.io/netpolcheck/netpolcheck":             false,
		"localhost:5000/netpolcheck":                  false,
	}
	for image, ok := range cases {
		if err := checkImageTag(image); (err == nil) != ok {
			t.Errorf("checkImageTag(%q) = %v, want ok=%v", image, err, ok)
		}
	}
}

// TestRealKindReadsTheConfig hands the generated config to the real kind
// binary, which decodes it strictly before it contacts the engine: on a
// machine without an engine, kind must get past decoding and fail only on
// the engine. It needs kind of KindVersion on PATH or in the default cache
// (as FindKind builds it), and no reachable engine (it would create a
// cluster).
func TestRealKindReadsTheConfig(t *testing.T) {
	bin, err := exec.LookPath("kind")
	if v, verr := kindVersion(context.Background(), bin); err != nil || verr != nil || v != KindVersion {
		cache, cerr := os.UserCacheDir()
		if cerr != nil {
			t.Skip("no user cache directory")
		}
		bin = KindBinaryPath(filepath.Join(cache, "netpolcheck"))
		if v, err := kindVersion(context.Background(), bin); err != nil || v != KindVersion {
			t.Skipf("no kind %s on PATH or at %s", KindVersion, bin)
		}
	}
	if CheckEngine(context.Background()) == nil {
		t.Skip("a container engine is reachable: kind would create a real cluster")
	}
	data, err := ConfigYAML(Config("npc-config-check", DefaultWorkers, NodeImage))
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), ConfigFile)
	if err := os.WriteFile(config, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "create", "cluster", "--name", "npc-config-check", "--config", config, "--kubeconfig", filepath.Join(t.TempDir(), "kubeconfig")).CombinedOutput()
	if err == nil {
		t.Fatalf("kind created a cluster without an engine:\n%s", out)
	}
	if strings.Contains(string(out), "decode config") || strings.Contains(string(out), "unmarshal") {
		t.Fatalf("kind %s rejects the generated config:\n%s\n%s", KindVersion, out, data)
	}
	t.Logf("kind decoded the config and stopped at the engine: %s", lastLine(strings.SplitN(string(out), "\n\n", 2)[0]))
}
