package kubeconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
)

// kubeconfigFile writes a kubeconfig with one cluster, user and context
// per name, the first one current.
func kubeconfigFile(t *testing.T, dir, file string, names ...string) string {
	t.Helper()
	var clusters, contexts, users strings.Builder
	for _, n := range names {
		clusters.WriteString("- name: " + n + "\n  cluster: {server: 'https://" + n + ".example:6443'}\n")
		contexts.WriteString("- name: " + n + "\n  context: {cluster: " + n + ", user: " + n + "}\n")
		users.WriteString("- name: " + n + "\n  user: {token: t}\n")
	}
	data := "apiVersion: v1\nkind: Config\ncurrent-context: " + names[0] + "\nclusters:\n" + clusters.String() +
		"contexts:\n" + contexts.String() + "users:\n" + users.String()
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	a := kubeconfigFile(t, dir, "a", "alpha")
	b := kubeconfigFile(t, dir, "b", "beta", "gamma")
	for _, tc := range []struct {
		name, env, paths, context string
		wantHost, wantErr         string
	}{
		{name: "one file", paths: b, wantHost: "https://beta.example:6443"},
		{name: "one file, another context", paths: b, context: "gamma", wantHost: "https://gamma.example:6443"},
		{name: "several files: the first one's current context", paths: a + ":" + b, wantHost: "https://alpha.example:6443"},
		{name: "several files, a context of the second", paths: a + ":" + b, context: "gamma", wantHost: "https://gamma.example:6443"},
		{name: "KUBECONFIG with several files", env: b + ":" + a, context: "alpha", wantHost: "https://alpha.example:6443"},
		// client-go fixes ~/.kube/config when it starts; here it is missing
		{name: "nothing: ~/.kube/config", wantErr: "no cluster in the kubeconfig (" + clientcmd.RecommendedHomeFile + "): give --kubeconfig, set KUBECONFIG, or write ~/.kube/config"},
		{name: "unknown context", paths: a, context: "delta", wantErr: `context "delta" does not exist`},
		{name: "missing file", paths: filepath.Join(dir, "missing"), wantErr: "loading the kubeconfig (" + filepath.Join(dir, "missing") + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			if tc.env == "" && tc.paths == "" {
				if _, err := os.Stat(clientcmd.RecommendedHomeFile); err == nil {
					t.Skipf("%s exists", clientcmd.RecommendedHomeFile)
				}
			}
			cfg, err := kubeconfig.Load(tc.paths, tc.context)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tc.wantHost {
				t.Errorf("host %s, want %s", cfg.Host, tc.wantHost)
			}
		})
	}
}
