package nodeagent

import (
	corev1 "k8s.io/api/core/v1"

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
