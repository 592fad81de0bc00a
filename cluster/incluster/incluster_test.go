package incluster

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/netpolcheck/netpolcheck/cluster/access"
)

var testOptions = Options{Namespace: "np", Name: "netpolcheck", Image: "ghcr.io/netpolcheck/netpolcheck:dev", RunArgs: []string{"--suites", "recipes"}}

// The bundle carries the files through a log among other lines.
func TestBundleRoundTrip(t *testing.T) {
	src := t.TempDir()
	big := strings.Repeat("<testcase/>\n", 5000)
	for name, content := range map[string]string{"junit.xml": big, "summary.md": "# run\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	log.WriteString("running 29 cases\n")
	if err := WriteBundle(&log, src, []string{"junit.xml", "results.json", "summary.md"}); err != nil {
		t.Fatal(err)
	}
	log.WriteString("29 cases: 29 passed\n")
	dst := t.TempDir()
	names, err := ReadBundle(&log, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"junit.xml", "summary.md"}) {
		t.Errorf("files %v, want junit.xml and summary.md (results.json was not there)", names)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "junit.xml")); string(got) != big {
		t.Errorf("junit.xml came back with %d bytes, want %d", len(got), len(big))
	}
	if _, err := ReadBundle(strings.NewReader("netpolcheck run: no permission\n"), dst); !errors.Is(err, ErrNoBundle) {
		t.Errorf("a log without a bundle: %v, want ErrNoBundle", err)
	}
}

// The Job's ClusterRole is the permission list, bound to the Job's service
// account, and the Job runs netpolcheck run in the cluster with its
// reports printed to the log.
func TestJobManifest(t *testing.T) {
	data, err := Job(testOptions)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(string(data), "---\n"), "\n---\n")
	kinds := map[string]string{}
	for _, d := range docs {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(d), &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind] = d
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(kinds["ClusterRole"]), &role); err != nil {
		t.Fatal(err)
	}
	want := access.ClusterRole("netpolcheck")
	if len(role.Rules) != len(want.Rules) {
		t.Fatalf("the ClusterRole has %d rules, want %d", len(role.Rules), len(want.Rules))
	}
	for i := range want.Rules {
		if !slices.Equal(role.Rules[i].Verbs, want.Rules[i].Verbs) || !slices.Equal(role.Rules[i].Resources, want.Rules[i].Resources) || !slices.Equal(role.Rules[i].APIGroups, want.Rules[i].APIGroups) {
			t.Errorf("rule %d: %+v, want %+v", i, role.Rules[i], want.Rules[i])
		}
	}
	var binding rbacv1.ClusterRoleBinding
	if err := yaml.UnmarshalStrict([]byte(kinds["ClusterRoleBinding"]), &binding); err != nil {
		t.Fatal(err)
	}
	if binding.RoleRef.Name != "netpolcheck" || len(binding.Subjects) != 1 || binding.Subjects[0].Namespace != "np" || binding.Subjects[0].Name != "netpolcheck" {
		t.Errorf("binding %+v", binding)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(kinds["Job"]), &job); err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	cmd := strings.Join(pod.Containers[0].Command, " ")
	if pod.ServiceAccountName != "netpolcheck" || pod.RestartPolicy != "Never" || *job.Spec.BackoffLimit != 0 ||
		cmd != "/netpolcheck run --in-cluster --image ghcr.io/netpolcheck/netpolcheck:dev --out /results --log-reports --suites recipes" {
		t.Errorf("job pod: service account %s, restart %s, command %s", pod.ServiceAccountName, pod.RestartPolicy, cmd)
	}
	if _, ok := kinds["Namespace"]; !ok {
		t.Error("no Namespace")
	}
	if _, ok := kinds["ServiceAccount"]; !ok {
		t.Error("no ServiceAccount")
	}
}

// The plugin has what Sonobuoy requires: sonobuoy-config with a driver, a
// name and the JUnit result format, and a container spec whose results
// go to Sonobuoy's results directory, named by its done file.
func TestSonobuoyPlugin(t *testing.T) {
	data, err := SonobuoyYAML(testOptions)
	if err != nil {
		t.Fatal(err)
	}
	var plugin SonobuoyPlugin
	if err := yaml.UnmarshalStrict(bytes.TrimPrefix(data, []byte("---\n")), &plugin); err != nil {
		t.Fatal(err)
	}
	var generic map[string]map[string]any
	if err := yaml.Unmarshal(bytes.TrimPrefix(data, []byte("---\n")), &generic); err != nil {
		t.Fatal(err)
	}
	cfg := generic["sonobuoy-config"]
	if cfg["driver"] != "Job" || cfg["plugin-name"] != "netpolcheck" || cfg["result-format"] != "junit" {
		t.Errorf("sonobuoy-config %v", cfg)
	}
	spec := plugin.Spec
	cmd := strings.Join(spec.Command, " ")
	if spec.Name == "" || spec.Image != testOptions.Image ||
		!strings.Contains(cmd, "run --in-cluster") || !strings.Contains(cmd, "--out /tmp/sonobuoy/results") || !strings.Contains(cmd, "--done-file /tmp/sonobuoy/results/done") {
		t.Errorf("spec %+v", spec)
	}
	if len(spec.VolumeMounts) != 1 || spec.VolumeMounts[0].MountPath != SonobuoyResultsDir || spec.VolumeMounts[0].Name != "results" {
		t.Errorf("volume mounts %+v, want the results volume at %s", spec.VolumeMounts, SonobuoyResultsDir)
	}
}
