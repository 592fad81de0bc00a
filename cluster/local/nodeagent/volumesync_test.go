package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func configMapVolume(name string) corev1.Volume {
	return corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}}}}
}

// TestKeepVolumesSynced: updates to a configMap and a secret reach their
// volumes' files; an object that cannot be read leaves the files alone.
func TestKeepVolumesSynced(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"key": "one"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns"}, Data: map[string][]byte{"password": []byte("old")}}
	client := fake.NewClientset(cm, secret)
	a := &Agent{client: client}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		configMapVolume("cfg"),
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}}}
	dir := t.TempDir()
	vols, err := a.prepareVolumes(context.Background(), pod, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols.synced) != 2 {
		t.Fatalf("synced volumes %+v, want cfg and creds", vols.synced)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keepVolumesSynced(ctx, vols.synced, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	waitFile := func(p, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			data, _ := os.ReadFile(filepath.Join(dir, p))
			if string(data) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q, want %q", p, data, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cm.Data = map[string]string{"key": "two"}
	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret.Data = map[string][]byte{"password": []byte("new")}
	if _, err := client.CoreV1().Secrets("ns").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile("cfg/key", "two")
	waitFile("creds/password", "new")
	// Gone (and not optional): the volume keeps its files.
	if err := client.CoreV1().ConfigMaps("ns").Delete(ctx, "cfg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	waitFile("cfg/key", "two")
}

// TestConfigMapUpdateReachesTheContainer runs a container as root whose
// configMap volume is bind-mounted: an update shows in its files within
// the sync period (and a margin), through the ..data link.
func TestConfigMapUpdateReachesTheContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	seen := filepath.Join(t.TempDir(), "seen")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "ns", UID: types.UID("uid-reader")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Volumes: []corev1.Volume{configMapVolume("cfg")},
			Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev",
				Command:      []string{"/bin/sh", "-c", `while :; do echo "$(cat /etc/cfg/key) $(readlink /etc/cfg/key)" > ` + seen + `.tmp; mv ` + seen + `.tmp ` + seen + `; sleep 0.1; done`},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true}}}}},
	}
	a := hostAgent(t, "/bin/true", pod)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"key": "one"}}
	ctx := context.Background()
	if _, err := a.client.CoreV1().ConfigMaps("ns").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.stopAll() })
	startPods(t, a, pod)
	waitSeen := func(want string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			data, _ := os.ReadFile(seen)
			if strings.TrimSpace(string(data)) == want {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("after %s the container sees %q, want %q", within, data, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSeen("one ..data/key", 5*time.Second)
	cm.Data["key"] = "two"
	if _, err := a.client.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	took := waitSeen("two ..data/key", volumeSyncPeriod+5*time.Second)
	t.Logf("the update reached the container in %s", took.Round(time.Millisecond))
}

// TestProjectedAndDownwardVolumesSynced: a projected volume is kept in sync
// as a kubelet keeps it: its configMap's update reaches its file, its token
// is requested again once 80% of its lifetime has passed, and a label
// change reaches the downwardAPI files, its own and a downwardAPI volume's.
func TestProjectedAndDownwardVolumesSynced(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "ns"}, Data: map[string]string{"ca.crt": "CA 1"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-p", Labels: map[string]string{"app": "one"}}}
	tokens := 0
	client := fake.NewClientset(cm, pod)
	client.PrependReactor("create", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		req := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		tokens++
		req.Status.Token = fmt.Sprintf("token-%d", tokens)
		req.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Second))
		return true, req, nil
	})
	a := &Agent{client: client, lister: func(key string) (*corev1.Pod, bool, error) {
		p, err := client.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
		return p, err == nil, nil
	}}
	one := int64(1)
	labels := []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "api", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &one}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: labels}},
		}}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: labels}}},
	}
	dir := t.TempDir()
	vols, err := a.prepareVolumes(context.Background(), pod, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keepVolumesSynced(ctx, vols.synced, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	cm.Data = map[string]string{"ca.crt": "CA 2"}
	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"app": "two"}
	if _, err := client.CoreV1().Pods("ns").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for path, want := range map[string]string{"api/ca.crt": "CA 2", "api/token": "token-2", "api/labels": `app="two"`, "info/labels": `app="two"`} {
		for {
			data, _ := os.ReadFile(filepath.Join(dir, path))
			if string(data) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q, want %q", path, data, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
