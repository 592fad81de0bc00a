package nodeagent

import (
	"slices"
	"time"

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

// completed counts p, a container that terminated for good, and reports
// whether it was the pod's last container (sidecars aside) to do so.
func (rt *podRuntime) completed(p *process) bool {
	if matrix.IsSidecar(p.spec) {
		return false
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.finished++
	return rt.finished == len(rt.pod.Spec.Containers)
}

// stopSidecars ends a pod whose containers have all completed, as a kubelet
// does: its sidecars are stopped in the reverse of their order and
// reported terminated. The pod's phase follows its containers alone.
func (a *Agent) stopSidecars(rt *podRuntime) {
	for _, p := range slices.Backward(rt.procs) {
		if !matrix.IsSidecar(p.spec) {
			continue
		}
		p.stop()
		p.mu.Lock()
		cmd, started := p.cmd, p.startedAt
		p.mu.Unlock()
		if cmd == nil || cmd.ProcessState == nil {
			continue
		}
		term := terminated(exitCode(cmd.ProcessState), started, time.Now())
		a.reportContainer(rt, p.container, func(s *corev1.ContainerStatus) {
			s.Ready, s.State = false, corev1.ContainerState{Terminated: term}
		})
	}
}
