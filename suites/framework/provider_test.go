package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// clearEnv unsets every variable the configuration reads.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, key := range []string{EnvProvider, EnvKubeconfig, EnvContext, EnvLocalName, EnvLocalState, EnvBinDir,
		EnvImage, EnvProbeTimeout, EnvConvergence, EnvRunID, EnvCNI, EnvExternalHosts, "KUBECONFIG"} {
		t.Setenv(key, "")
		os.Unsetenv(key)
	}
}

func TestProviderSelection(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	data := "apiVersion: v1\nkind: Config\ncurrent-context: a\n" +
		"clusters:\n- name: a\n  cluster: {server: 'https://a.invalid:6443'}\n- name: b\n  cluster: {server: 'https://b.invalid:6443'}\n" +
		"contexts:\n- name: a\n  context: {cluster: a, user: u}\n- name: b\n  context: {cluster: b, user: u}\n" +
		"users:\n- name: u\n  user: {token: t}\n"
	if err := os.WriteFile(kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantErr   string
		wantState string
		wantCNI   string
		wantHost  string // attached clusters: the API server reached
	}{
		{name: "local by default", wantState: "/run/netpolcheck/local", wantCNI: "reference"},
		{name: "local named", env: map[string]string{EnvProvider: "local", EnvLocalName: "other"}, wantState: "/run/netpolcheck/other", wantCNI: "reference"},
		{name: "existing needs a kubeconfig", env: map[string]string{EnvProvider: "existing"}, wantErr: "needs a kubeconfig"},
		{name: "kind needs a kubeconfig", env: map[string]string{EnvProvider: "kind"}, wantErr: "needs a kubeconfig"},
		{name: "unknown provider", env: map[string]string{EnvProvider: "gke"}, wantErr: `"gke": want existing, in-cluster, kind, local`},
		{name: "existing, current context", env: map[string]string{EnvProvider: "existing", EnvKubeconfig: kubeconfig},
			wantCNI: "unknown", wantHost: "https://a.invalid:6443"},
		{name: "existing, KUBECONFIG", env: map[string]string{EnvProvider: "existing", "KUBECONFIG": kubeconfig},
			wantCNI: "unknown", wantHost: "https://a.invalid:6443"},
		{name: "kind, named context", env: map[string]string{EnvProvider: "kind", EnvKubeconfig: kubeconfig, EnvContext: "b", EnvCNI: "calico"},
			wantCNI: "calico", wantHost: "https://b.invalid:6443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := ConfigFromEnv()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfigFromEnv: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LocalState != tc.wantState || cfg.CNI != tc.wantCNI {
				t.Errorf("state %q, CNI %q; want %q, %q", cfg.LocalState, cfg.CNI, tc.wantState, tc.wantCNI)
			}
			p, err := NewProvider(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantHost == "" {
				if _, ok := p.(*localProvider); !ok {
					t.Errorf("provider %T, want the local cluster's", p)
				}
				return
			}
			started, err := p.Up(t.Context(), []ExternalHost{{Name: "x"}})
			if err != nil || started {
				t.Fatalf("Up of an attached cluster: started %v, %v; want nothing to do", started, err)
			}
			a, err := p.Attach()
			if err != nil {
				t.Fatal(err)
			}
			if got := a.REST().Host; got != tc.wantHost {
				t.Errorf("attached to %s, want %s", got, tc.wantHost)
			}
			if x := a.ExternalHosts(); len(x) != 0 {
				t.Errorf("external hosts %v on an attached cluster, want none", x)
			}
			_, canSource := a.ProbeTransport(nil, nil)
			if canSource == nil || canSource(matrix.Endpoint{External: true}) || !canSource(matrix.Endpoint{Name: "x/a"}) {
				t.Error("through kube exec only pods can be probe sources")
			}
			if err := p.Down(t.Context()); err != nil {
				t.Errorf("Down of an attached cluster: %v", err)
			}
		})
	}
}

func TestEnvironRoundTrips(t *testing.T) {
	for _, cfg := range []Config{
		{Provider: ProviderLocal, LocalName: "local", LocalState: "/run/netpolcheck/local", Image: DefaultImage,
			ProbeTimeout: 2 * time.Second, Convergence: 3 * time.Second, RunID: "abc123", CNI: "reference", NoExternalHosts: true},
		{Provider: ProviderExisting, Kubeconfig: "/k", Context: "c", LocalName: "local", BinDir: "/bin",
			Image: "example.invalid/probe:1", ProbeTimeout: time.Second, Convergence: 15 * time.Second, RunID: "def456", CNI: "calico"},
	} {
		clearEnv(t)
		for _, kv := range cfg.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		got, err := ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if got != cfg {
			t.Errorf("ConfigFromEnv(%v) = %+v, want %+v", cfg.Environ(), got, cfg)
		}
	}
}

func TestDeleteRunObjects(t *testing.T) {
	ns := func(name, run string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{RunAnnotation: run}}}
	}
	pod := func(ns, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	terminating := ns("y-abc123-p1", "abc123")
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	client := fake.NewClientset(ns("x-abc123-p1", "abc123"), ns("case-1a2b3c", "abc123"), ns("x-def456-p1", "def456"), terminating,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		pod("kube-system", "dns-abc123-p1"), pod("kube-system", "dns-def456-p1"), pod("kube-system", "coredns-1"))
	deleted, err := DeleteRunObjects(t.Context(), client, "abc123", time.Second)
	// The fake never finishes deleting the namespace being deleted: its wait
	// times out, and it is not counted as deleted here.
	if err == nil || !strings.Contains(err.Error(), "waiting for namespace/y-abc123-p1 to be gone") {
		t.Fatalf("error %v, want the wait for the terminating namespace to time out", err)
	}
	want := []string{"namespace/case-1a2b3c", "namespace/x-abc123-p1", "kube-system/pod/dns-abc123-p1"}
	if !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	left, _ := client.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	var names []string
	for _, n := range left.Items {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"default", "x-def456-p1", "y-abc123-p1"}) {
		t.Errorf("namespaces left %v, want the other run's and default", names)
	}
	pods, _ := client.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{})
	if len(pods.Items) != 2 {
		t.Errorf("pods left in kube-system: %d, want the other run's and coredns", len(pods.Items))
	}
}

// The suites of one run share its run ID: each suite's processes name their
// objects apart (conformance and generated ran into each other's probe
// namespaces being deleted when the names were RUNID-pN).
func TestProcessSuffixesOfARun(t *testing.T) {
	seen := map[string]string{}
	for _, suite := range []string{"recipes", "conformance", "generated"} {
		for process := 1; process <= 4; process++ {
			env := &Env{Config: Config{RunID: "3769bd"}, Suite: suite, Process: process}
			suffix := env.processSuffix()
			if other, dup := seen[suffix]; dup {
				t.Errorf("%s process %d and %s share the suffix %s", suite, process, other, suffix)
			}
			seen[suffix] = fmt.Sprintf("%s process %d", suite, process)
			if len("kube-system-"+suffix) > 63 {
				t.Errorf("suffix %s makes names longer than a namespace's 63 characters", suffix)
			}
		}
	}
}

// The in-cluster provider attaches with the pod's service account; outside
// a pod it says so.
func TestInClusterProviderOutsideAPod(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvProvider, ProviderInCluster)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if started, err := p.Up(t.Context(), nil); err != nil || started {
		t.Fatalf("Up: started %v, %v; want nothing to do", started, err)
	}
	if _, err := p.Attach(); err == nil || !strings.Contains(err.Error(), "in-cluster") {
		t.Errorf("Attach outside a pod: %v, want an error naming the in-cluster provider", err)
	}
}
