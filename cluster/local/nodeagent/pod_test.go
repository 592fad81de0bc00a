package nodeagent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestFailedStartIsRetried: a pod whose container exits before it is ready
// is torn down and started again on the next sync, not left with a stale
// record that makes every later sync a no-op.
func TestFailedStartIsRetried(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	exits := filepath.Join(dir, "netpolcheck-probe")
	if err := os.WriteFile(exits, []byte("#!/bin/sh\necho started >> "+filepath.Join(dir, "starts")+"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-retry"},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{{
			Name: "web", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/netpolcheck-probe", "serve", "--port", "80/TCP"},
		}}},
	}
	client := fake.NewClientset(pod)
	a := &Agent{
		cfg: Config{NodeName: "n1", NodeIP: "192.0.2.1", LogDir: filepath.Join(dir, "logs"), PodsDir: filepath.Join(dir, "pods"),
			ContainerInit: testContainerInit(), Binaries: map[string]string{BinaryProbe: exits, BinaryCLI: exits, BinaryCNI: exits,
				BinaryRoutes: exits, BinaryEnforcer: exits}, Log: slog.New(slog.DiscardHandler)},
		client: client,
		pods:   map[string]*podRuntime{},
		lister: func(string) (*corev1.Pod, bool, error) { return pod, true, nil },
	}
	key := podKey(pod.Namespace, pod.Name)
	for attempt := 1; attempt <= 2; attempt++ {
		err := a.sync(context.Background(), key)
		if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
			t.Fatalf("sync %d: %v, want the container's early exit", attempt, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "starts"))
	if n := strings.Count(string(data), "started"); n < 2 {
		t.Errorf("the container started %d times in two syncs, want a start per sync", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pods[key]; ok {
		t.Error("a failed start left the pod's record behind")
	}
}
