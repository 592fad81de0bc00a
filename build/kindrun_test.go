package build_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make kind-run names the run after the CNI the cluster of make kind-up
// runs, with its image and kubeconfig, and refuses a KIND_CNI or IMAGE that
// disagrees with the cluster. Ginkgo is replaced by a script that records
// what it was given.
func TestMakeKindRunUsesTheClusterState(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on PATH")
	}
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	// what `netpolcheck kind up --cni calico --image ...:v9` records
	files := map[string]string{
		"cluster.json": `{"name": "netpolcheck", "cni": "calico", "image": "ghcr.io/netpolcheck/netpolcheck:v9", "workers": 2, "nodeImage": "kindest/node:v1.37.2"}`,
		"kubeconfig":   "apiVersion: v1\nkind: Config\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(state, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	record := filepath.Join(tmp, "ginkgo.txt")
	ginkgo := filepath.Join(tmp, "ginkgo")
	script := "#!/bin/sh\n{ env | grep '^NETPOLCHECK_' | sort; echo \"args: $*\"; } > " + record + "\n"
	if err := os.WriteFile(ginkgo, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, out := filepath.Join(tmp, "bin"), filepath.Join(tmp, "out")
	makeKindRun := func(vars ...string) (string, error) {
		os.Remove(record)
		args := append([]string{"--no-print-directory", "-C", root, "kind-run", "BIN=" + bin, "OUT=" + out,
			"KIND_STATE=" + state, "GINKGO=" + ginkgo}, vars...)
		cmd := exec.Command("make", args...)
		cmd.Env = withoutEnv(os.Environ(), "KIND_CNI", "IMAGE", "KIND_OUT")
		output, err := cmd.CombinedOutput()
		return string(output), err
	}

	// The README's order: make kind-up KIND_CNI=calico, then make kind-run.
	output, _ := makeKindRun() // fails at the report: the fake Ginkgo writes no JUnit
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("make kind-run did not run the suites: %v\n%s", err, output)
	}
	for _, want := range []string{
		"NETPOLCHECK_CNI=calico\n", "NETPOLCHECK_IMAGE=ghcr.io/netpolcheck/netpolcheck:v9\n",
		"NETPOLCHECK_KUBECONFIG=" + filepath.Join(state, "kubeconfig") + "\n", "NETPOLCHECK_PROVIDER=kind\n",
		"--output-dir " + filepath.Join(out, "kind-calico") + " ",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the suites ran with\n%s\nwant %q", got, want)
		}
	}
	if _, err := makeKindRun("KIND_CNI=calico", "IMAGE=ghcr.io/netpolcheck/netpolcheck:v9"); err != nil {
		if _, statErr := os.Stat(record); statErr != nil {
			t.Errorf("KIND_CNI and IMAGE that agree with the cluster: the suites did not run: %v", err)
		}
	}

	for _, tc := range []struct{ vars, want string }{
		{"KIND_CNI=reference", "kind cluster netpolcheck runs CNI calico, not reference"},
		{"IMAGE=ghcr.io/netpolcheck/netpolcheck:v8", "was given the image ghcr.io/netpolcheck/netpolcheck:v9, not ghcr.io/netpolcheck/netpolcheck:v8"},
		{"KIND_STATE=" + filepath.Join(tmp, "none"), "no kind cluster netpolcheck brought up by netpolcheck kind up in " + filepath.Join(tmp, "none")},
	} {
		output, err := makeKindRun(tc.vars)
		if err == nil || !strings.Contains(output, tc.want) {
			t.Errorf("make kind-run %s: err %v, output:\n%s\nwant %q", tc.vars, err, output, tc.want)
		}
		if _, err := os.Stat(record); err == nil {
			t.Errorf("make kind-run %s ran the suites", tc.vars)
		}
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && name != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
