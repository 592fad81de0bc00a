package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{name: "unknown provider", env: map[string]string{EnvProvider: "gke"}, wantErr: `"gke": want existing, kind, local`},
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
