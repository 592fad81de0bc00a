package observe

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestPodKeepsSidecarPorts: restartable init containers are the pod's
// sidecars, whose ports named ports resolve against; other init containers
// have finished before the pod runs and count for nothing.
func TestPodKeepsSidecarPorts(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a", Labels: map[string]string{"pod": "a"}},
		Spec: corev1.PodSpec{
			NodeName: "node1",
			InitContainers: []corev1.Container{
				{Name: "setup", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 9000}}},
				{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}},
			},
			Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}},
		},
		Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.244.1.10"}}},
	}
	want := matrix.Pod{
		Namespace: "x", Name: "a", Labels: map[string]string{"pod": "a"}, Node: "node1", IPs: []string{"10.244.1.10"},
		Sidecars:   []matrix.Container{{Name: "proxy", Ports: []matrix.ContainerPort{{Name: "proxy", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}},
		Containers: []matrix.Container{{Name: "app", Ports: []matrix.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}},
	}
	if got := Pod(pod); !reflect.DeepEqual(got, want) {
		t.Errorf("Pod() = %+v\nwant   %+v", got, want)
	}
}

// TestPodKeepsNodeAndHostNetwork checks that the engine learns where a pod
// runs and whether it is a host-network pod, which decide its node cells.
func TestPodKeepsNodeAndHostNetwork(t *testing.T) {
	for _, hostNetwork := range []bool{false, true} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "nodes", Name: "host-node1"},
			Spec:       corev1.PodSpec{NodeName: "node1", HostNetwork: hostNetwork},
			Status:     corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.250.0.11"}}},
		}
		got := Pod(pod)
		if got.Node != "node1" || got.HostNetwork != hostNetwork || len(got.IPs) != 1 {
			t.Errorf("hostNetwork %v: observed %+v", hostNetwork, got)
		}
	}
}
