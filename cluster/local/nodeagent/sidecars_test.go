package nodeagent

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestServingContainersRunsSidecars(t *testing.T) {
	always, never := corev1.ContainerRestartPolicyAlways, corev1.ContainerRestartPolicy("Never")
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "setup"},
			{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 8080}}},
			{Name: "once", RestartPolicy: &never},
		},
		Containers: []corev1.Container{{Name: "app"}},
	}}
	var got []string
	for _, c := range servingContainers(pod) {
		got = append(got, c.Name)
	}
	if want := []string{"proxy", "app"}; !slices.Equal(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
}
