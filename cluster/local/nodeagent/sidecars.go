package nodeagent

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// servingContainers returns what the agent runs for a pod: its sidecars
// (restartable init containers, which run for the pod's whole life and serve
// their ports, named ones included, like the enforcer and the engine count
// them), then its containers. Other init containers run nothing here.
func servingContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; matrix.IsSidecar(c) {
			out = append(out, c)
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// initContainerStatuses are the pod's initContainerStatuses once its
// containers run, in the spec's order, as a kubelet reports them: the
// completed init containers' (completed, which the kubelet counts as
// ready), and a running sidecar's, started and ready unless a startup or
// readiness probe has yet to pass, restarts counted as for containers.
func initContainerStatuses(spec *corev1.PodSpec, completed []corev1.ContainerStatus, now metav1.Time) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if !matrix.IsSidecar(c) {
			for _, s := range completed {
				if s.Name == c.Name {
					s.Ready = s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
					out = append(out, s)
				}
			}
			continue
		}
		started, ready := startsAs(c)
		out = append(out, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return out
}
