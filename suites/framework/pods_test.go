package framework

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

func TestPodObjectIsReadyOnlyWhenEveryServerAnswers(t *testing.T) {
	pod := PodObject("x-1", matrix.Pod{Namespace: "x", Name: "a", Containers: []matrix.Container{
		{Name: "serve-80-tcp", Ports: []matrix.ContainerPort{{ContainerPort: 80}}},
		{Name: "serve-81", Ports: []matrix.ContainerPort{{ContainerPort: 81, Protocol: corev1.ProtocolUDP}, {ContainerPort: 81, Protocol: corev1.ProtocolSCTP}}},
	}}, "netpolcheck-probe:dev")
	probe := pod.Spec.Containers[0]
	if probe.Name != ProbeContainer || len(pod.Spec.Containers) != 3 {
		t.Fatalf("containers %v", pod.Spec.Containers)
	}
	want := []string{"/netpolcheck-probe", "ready", "--port", "80/TCP", "--port", "81/UDP", "--port", "81/SCTP"}
	for name, p := range map[string]*corev1.Probe{"startup": probe.StartupProbe, "readiness": probe.ReadinessProbe} {
		if p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, want) {
			t.Errorf("%s probe %+v, want exec %q", name, p, want)
			continue
		}
		if p.HTTPGet != nil || p.TCPSocket != nil || p.GRPC != nil {
			t.Errorf("%s probe reaches the pod from the node: %+v", name, p)
		}
	}
	if s, r := probe.StartupProbe, probe.ReadinessProbe; s != nil && r != nil && (s.PeriodSeconds != 1 || r.PeriodSeconds != 10 || r.FailureThreshold != 3) {
		t.Errorf("startup every %ds, readiness every %ds failing after %d", s.PeriodSeconds, r.PeriodSeconds, r.FailureThreshold)
	}
	for _, c := range pod.Spec.Containers[1:] {
		if c.StartupProbe != nil || c.ReadinessProbe != nil {
			t.Errorf("server container %s has its own probes", c.Name)
		}
	}

	client := PodObject("x-1", matrix.Pod{Namespace: "x", Name: "client"}, "netpolcheck-probe:dev")
	if c := client.Spec.Containers[0]; len(client.Spec.Containers) != 1 || c.StartupProbe != nil || c.ReadinessProbe != nil {
		t.Errorf("a pod serving nothing: %+v", client.Spec.Containers)
	}
}
