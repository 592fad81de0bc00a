// Package incluster makes what runs netpolcheck inside a cluster: the Job
// with its least RBAC (the ClusterRole of cluster/access), the Sonobuoy
// plugin definition, and the bundle of reports a Job's pod prints to its
// log, which `netpolcheck job-reports` reads back.
package incluster

import (
	"bytes"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/netpolcheck/netpolcheck/cluster/access"
)

// Paths in the project's image and in the Job's pod.
const (
	// Binary is netpolcheck in the project's image; the compiled suites are
	// next to it, in /suites.
	Binary = "/netpolcheck"
	// JobResultsDir is where the Job's run writes its reports (an emptyDir).
	JobResultsDir = "/results"
	// SonobuoyResultsDir is where Sonobuoy collects a plugin's results, and
	// SonobuoyDoneFile the file that names the result once it is complete.
	SonobuoyResultsDir = "/tmp/sonobuoy/results"
	SonobuoyDoneFile   = SonobuoyResultsDir + "/done"
	// Container is the name of the Job's container.
	Container = "netpolcheck"
)

// Options name the objects and the run.
type Options struct {
	// Namespace holds the Job and its service account (the run's cases make
	// namespaces of their own).
	Namespace string
	// Name names the Job, its service account, ClusterRole and binding.
	Name string
	// Image is the project's image: netpolcheck, the compiled suites, and
	// the probe agent the suites' pods run.
	Image string
	// RunArgs are more flags of `netpolcheck run` (such as --suites,
	// --label-filter, --cni).
	RunArgs []string
}

// runCommand is the container's command: netpolcheck run in the cluster,
// the reports in out, the probe pods of the same image.
func (o Options) runCommand(out string, extra ...string) []string {
	cmd := []string{Binary, "run", "--in-cluster", "--image", o.Image, "--out", out}
	cmd = append(cmd, extra...)
	return append(cmd, o.RunArgs...)
}

// Job is the YAML of the namespace, service account, ClusterRole (exactly
// access.Permissions), its binding, and the Job that runs the suites once
// and prints its reports' bundle to its log.
func Job(o Options) ([]byte, error) {
	labels := map[string]string{"app.kubernetes.io/name": "netpolcheck"}
	meta := metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels}
	role := access.ClusterRole(o.Name)
	role.Labels = labels
	backoff := int32(0)
	objects := []any{
		corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: o.Namespace, Labels: labels}},
		corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta},
		role,
		rbacv1.ClusterRoleBinding{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
			ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: o.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: o.Name, Namespace: o.Namespace}},
		},
		batchv1.Job{
			TypeMeta:   typeMeta("batch/v1", "Job"),
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				BackoffLimit: &backoff,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						ServiceAccountName: o.Name,
						RestartPolicy:      corev1.RestartPolicyNever,
						Containers: []corev1.Container{{
							Name:         Container,
							Image:        o.Image,
							Command:      o.runCommand(JobResultsDir, "--log-reports"),
							VolumeMounts: []corev1.VolumeMount{{Name: "results", MountPath: JobResultsDir}},
						}},
						Volumes: []corev1.Volume{{Name: "results", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					},
				},
			},
		},
	}
	return documents(objects)
}

// SonobuoyPlugin is the definition of a Sonobuoy plugin (a Job driver,
// JUnit results): its container runs the suites in the cluster with the
// reports in Sonobuoy's results directory and names junit.xml in the done
// file when they are written. Sonobuoy runs it with its own service
// account.
type SonobuoyPlugin struct {
	Config SonobuoyConfig   `json:"sonobuoy-config"`
	Spec   corev1.Container `json:"spec"`
}

// SonobuoyConfig is the plugin's sonobuoy-config section.
type SonobuoyConfig struct {
	Driver       string `json:"driver"`
	PluginName   string `json:"plugin-name"`
	ResultFormat string `json:"result-format"`
	Description  string `json:"description,omitempty"`
}

// Sonobuoy returns the plugin's definition.
func Sonobuoy(o Options) SonobuoyPlugin {
	return SonobuoyPlugin{
		Config: SonobuoyConfig{Driver: "Job", PluginName: o.Name, ResultFormat: "junit",
			Description: "netpolcheck: NetworkPolicy conformance and connectivity suites"},
		Spec: corev1.Container{
			Name:         "plugin",
			Image:        o.Image,
			Command:      o.runCommand(SonobuoyResultsDir, "--done-file", SonobuoyDoneFile),
			VolumeMounts: []corev1.VolumeMount{{Name: "results", MountPath: SonobuoyResultsDir}},
		},
	}
}

// SonobuoyYAML is the plugin's definition as `sonobuoy run --plugin` reads it.
func SonobuoyYAML(o Options) ([]byte, error) {
	return documents([]any{Sonobuoy(o)})
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// documents joins objects as a multi-document YAML stream.
func documents(objects []any) ([]byte, error) {
	var b bytes.Buffer
	for _, obj := range objects {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("writing the manifest: %w", err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}
