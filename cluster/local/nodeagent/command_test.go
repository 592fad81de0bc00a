package nodeagent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// dnsPod is a pod like the local cluster's CoreDNS: a local command with a
// ConfigMap volume and a Secret volume nested in it.
func dnsPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns-1", Namespace: "kube-system"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "coredns", Command: []string{"/coredns"}, Args: []string{"-conf", "/etc/coredns/Corefile", "-dns.port", "53"},
				WorkingDir: "/etc/coredns",
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/coredns"},
					{Name: "auth", MountPath: "/etc/coredns/auth/"},
					{Name: "token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}},
				{Name: "auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "coredns-auth",
					Items: []corev1.KeyToPath{{Key: "kubeconfig", Path: "kubeconfig"}}}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
			},
		},
	}
}

func TestContainerLaunch(t *testing.T) {
	pod := dnsPod()
	commands := map[string]string{"coredns": "/cache/coredns"}
	l, err := containerLaunch(pod, &pod.Spec.Containers[0], "/bin/probe", commands, "/pods/p/root")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/cache/coredns", "-conf", "/pods/p/root/etc/coredns/Corefile", "-dns.port", "53"}; !slices.Equal(l.argv, want) {
		t.Errorf("argv = %q, want %q", l.argv, want)
	}
	if l.dir != "/pods/p/root/etc/coredns" {
		t.Errorf("dir = %q", l.dir)
	}
	var paths []string
	for _, m := range l.mounts {
		paths = append(paths, m.mountPath)
	}
	if want := []string{"/etc/coredns/auth", "/etc/coredns"}; !slices.Equal(paths, want) {
		t.Errorf("materialized mounts %q, want %q (the projected token is not materialized)", paths, want)
	}

	// Without the command mapping, a container without ports runs nothing.
	if l, err := containerLaunch(pod, &pod.Spec.Containers[0], "/bin/probe", nil, "/pods/p/root"); err != nil || l.argv != nil {
		t.Errorf("unmapped command: %q, %v; want nothing", l.argv, err)
	}
	// A probe container keeps its arguments.
	probe := &corev1.Container{Name: "probe", Command: []string{"/netpolcheck-probe", "idle"}}
	if l, err := containerLaunch(pod, probe, "/bin/probe", commands, "/pods/p/root"); err != nil || !slices.Equal(l.argv, []string{"/bin/probe", "idle"}) || l.dir != "" {
		t.Errorf("probe container: %q in %q, %v", l.argv, l.dir, err)
	}
}

func TestMaterialize(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": ".:53 {}"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "coredns-auth", Namespace: "kube-system"},
			Data: map[string][]byte{"kubeconfig": []byte("apiVersion: v1"), "other": []byte("x")}},
	)
	a := &Agent{client: client}
	pod := dnsPod()
	root := t.TempDir()
	l, err := containerLaunch(pod, &pod.Spec.Containers[0], "/bin/probe", map[string]string{"coredns": "/cache/coredns"}, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.materialize(context.Background(), pod, root, l.mounts); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"etc/coredns/Corefile":        ".:53 {}",
		"etc/coredns/auth/kubeconfig": "apiVersion: v1",
	} {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/coredns/auth/other")); !os.IsNotExist(err) {
		t.Errorf("a key not in the items was written: %v", err)
	}

	// A missing ConfigMap is an error unless the volume is optional.
	pod.Spec.Volumes[0].ConfigMap.Name = "missing"
	if err := a.materialize(context.Background(), pod, t.TempDir(), l.mounts); err == nil {
		t.Error("a missing ConfigMap was materialized")
	}
	optional := true
	pod.Spec.Volumes[0].ConfigMap.Optional = &optional
	if err := a.materialize(context.Background(), pod, t.TempDir(), l.mounts); err != nil {
		t.Errorf("an optional missing ConfigMap: %v", err)
	}
}
