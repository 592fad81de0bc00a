package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
)

// An init container's log is served after it completed, as the kubelet
// serves it (kubectl logs -c, the saved logs of a CNI's install-cni); a
// sidecar's or an unknown container's is not found that way.
func TestLogOfACompletedInitContainer(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-router-x", UID: "uid-1"},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "install-cni"}, {Name: "proxy", RestartPolicy: &always}},
			Containers: []corev1.Container{{Name: "kube-router"}}}}
	a := hostAgent(t, "/bin/true")
	rt := &podRuntime{uid: pod.UID, pod: pod, dir: filepath.Join(a.cfg.PodsDir, "kube-system_kube-router-x_uid1"), containers: []string{"kube-router"}}
	a.pods[podKey(pod.Namespace, pod.Name)] = rt
	path := logPath(filepath.Join(a.cfg.LogDir, "kube-system_kube-router-x_uid1", "install-cni"), 0)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("2026-12-02T15:41:00Z stdout F installed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := (*kubeletRuntime)(a)
	ref := func(c string) kubeletapi.ContainerRef {
		return kubeletapi.ContainerRef{Namespace: pod.Namespace, Pod: pod.Name, Container: c}
	}
	got, err := k.LogFile(ref("install-cni"), false)
	if err != nil || got.Path != path {
		t.Fatalf("install-cni: %+v, %v; want %s", got, err, path)
	}
	select {
	case <-got.Done:
	default:
		t.Error("the log of a completed init container is not done")
	}
	for _, c := range []string{"proxy", "nothing"} {
		if _, err := k.LogFile(ref(c), false); !errors.Is(err, kubeletapi.ErrNotFound) {
			t.Errorf("%s: %v, want not found", c, err)
		}
	}
	if _, err := k.LogFile(ref("install-cni"), true); err == nil {
		t.Error("install-cni --previous: a log, but it never restarted")
	}
}
