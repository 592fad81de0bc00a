package nodeagent

import (
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestInitContainers: init containers run in order, to completion, before
// the others (a sidecar is left to run with them) and share the pod's
// volumes; one that fails under restartPolicy Never fails the pod without
// starting the others.
func TestInitContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	shell := func(name, script string) corev1.Container {
		return corev1.Container{Name: name, Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}}
	}
	pod := func(name string, inits ...corev1.Container) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-init-" + name)},
			Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
				InitContainers: inits,
				Containers:     []corev1.Container{shell("main", `test "$(cat /work/order)" = "first second"`)},
				Volumes:        []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
	}
	always := corev1.ContainerRestartPolicyAlways
	sidecar := shell("sidecar", "sleep 60")
	sidecar.RestartPolicy = &always
	ok := pod("ok", shell("first", "printf first > /work/order"), sidecar, shell("second", "printf ' second' >> /work/order"))
	failing := pod("failing", shell("first", "exit 7"), shell("second", "printf never > /work/order"))
	a := hostAgent(t, "/bin/true", ok, failing)
	t.Cleanup(func() { _ = a.stopAll() })
	get := startPods(t, a, ok, failing)
	deadline := time.Now().Add(5 * time.Second)
	for get("ok").Status.Phase != corev1.PodSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("the pod whose init containers prepared its file: %+v", get("ok").Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if inits := get("ok").Status.InitContainerStatuses; len(inits) != 3 || inits[2].Name != "second" || inits[2].State.Terminated == nil || inits[2].State.Terminated.Reason != "Completed" {
		t.Errorf("init container statuses = %+v", inits)
	}
	f := get("failing")
	if f.Status.Phase != corev1.PodFailed || len(f.Status.InitContainerStatuses) != 1 || f.Status.InitContainerStatuses[0].State.Terminated.ExitCode != 7 {
		t.Errorf("the pod whose init container failed: phase %s, init statuses %+v", f.Status.Phase, f.Status.InitContainerStatuses)
	}
	if len(f.Status.ContainerStatuses) != 0 {
		t.Errorf("the failed pod's containers ran: %+v", f.Status.ContainerStatuses)
	}
}
