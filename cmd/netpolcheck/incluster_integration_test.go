package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/reports"
	"github.com/netpolcheck/netpolcheck/suites/compiled"
)

// The Job of `netpolcheck manifest job`, applied to a local cluster, runs
// the suites in the cluster with its least RBAC, and job-reports reads its
// reports back from the pod's log; the same Job with one permission taken
// out of its ClusterRole fails at once, naming it.
func TestInClusterJob(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs this test as root: the local cluster is made of network namespaces")
		}
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	// The project's image on the local cluster is bin/: netpolcheck, the
	// probe agent, and the compiled suites at /suites, next to /netpolcheck.
	netpolcheck := buildWithSuites(t, compiled.Suites()...)
	_, kc := localUp(t, netpolcheck, "ic")
	cfg, err := kubeconfig.Load(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	disc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	applier := &cni.Applier{Client: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	run := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, netpolcheck, args...).CombinedOutput()
		return string(out), err
	}
	applyJob := func(jobName string, edit func([]*unstructured.Unstructured)) {
		t.Helper()
		manifest, err := run("manifest", "job", "--namespace", jobName, "--name", jobName, "--", "--suites", "recipes", "--focus", "seed001", "--procs", "2")
		if err != nil {
			t.Fatalf("manifest job: %v\n%s", err, manifest)
		}
		objs, err := cni.Decode([]byte(manifest))
		if err != nil {
			t.Fatal(err)
		}
		edit(objs)
		if err := applier.Apply(context.Background(), objs); err != nil {
			t.Fatalf("applying the Job: %v", err)
		}
	}

	// Without pods/exec: the run's preflight fails in seconds, by name.
	applyJob("np-denied", func(objs []*unstructured.Unstructured) {
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" {
				continue
			}
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			var kept []any
			for _, r := range rules {
				if resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources"); len(resources) == 1 && resources[0] == "pods/exec" {
					continue
				}
				kept = append(kept, r)
			}
			if len(kept) != len(rules)-1 {
				t.Fatalf("the ClusterRole has no pods/exec rule to take out: %v", rules)
			}
			if err := unstructured.SetNestedSlice(o.Object, kept, "rules"); err != nil {
				t.Fatal(err)
			}
		}
	})
	started := time.Now()
	denied, err := run("job-reports", "--kubeconfig", kc, "--namespace", "np-denied", "--name", "np-denied", "--out", t.TempDir(), "--timeout", "5m")
	if err == nil {
		t.Fatalf("job-reports of the Job without pods/exec succeeded:\n%s", denied)
	}
	for _, want := range []string{"failed without reports", "system:serviceaccount:np-denied:np-denied may not do what the suites need",
		"create pods/exec (in all namespaces)"} {
		if !strings.Contains(denied, want) {
			t.Errorf("job-reports of the Job without pods/exec lacks %q:\n%s", want, denied)
		}
	}
	if strings.Contains(denied, "create pods (in all namespaces)") {
		t.Errorf("a permission the role has is named missing:\n%s", denied)
	}
	t.Logf("the Job without pods/exec failed after %s:\n%s", time.Since(started).Round(time.Second), denied)

	// With the whole role: the suites run in the cluster and their reports
	// come back.
	applyJob("netpolcheck", func([]*unstructured.Unstructured) {})
	reportsDir := t.TempDir()
	started = time.Now()
	got, err := run("job-reports", "--kubeconfig", kc, "--out", reportsDir, "--timeout", "8m")
	if err != nil {
		t.Fatalf("job-reports: %v\n%s", err, got)
	}
	t.Logf("the Job ran in %s:\n%s", time.Since(started).Round(time.Second), got)
	for _, f := range reportFiles() {
		if _, err := os.Stat(filepath.Join(reportsDir, f)); err != nil {
			t.Errorf("read back: %v", err)
		}
	}
	data, err := os.ReadFile(filepath.Join(reportsDir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var result reports.Run
	if err := json.Unmarshal(data, &result); err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, c := range result.Cases {
		states[c.State]++
	}
	if result.Provider != "in-cluster" || states["passed"] == 0 || states["failed"] != 0 {
		t.Errorf("the in-cluster run: provider %s, cases by state %v; want passed cases and no failure", result.Provider, states)
	}
}
