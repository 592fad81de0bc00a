package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// The cluster's own pods' logs are saved, a restarted container's previous
// one too; the pods of the namespaces a run created are not.
func TestSaveClusterLogs(t *testing.T) {
	pod := func(ns, name string, restarts int32) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "install-cni"}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "agent", RestartCount: restarts}}}}
	}
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x-1234", Annotations: map[string]string{framework.RunAnnotation: "run-1"}}},
		pod("kube-system", "kube-router-abc", 2), pod("x-1234", "a", 0))
	dir := filepath.Join(t.TempDir(), "logs")
	n, err := saveClusterLogs(context.Background(), client, dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{"kube-system_kube-router-abc_agent.log", "kube-system_kube-router-abc_agent.previous.log", "kube-system_kube-router-abc_install-cni.log"}
	if n != 2 || !slices.Equal(got, want) {
		t.Errorf("%d logs saved, files %v; want 2, %v", n, got, want)
	}
}
