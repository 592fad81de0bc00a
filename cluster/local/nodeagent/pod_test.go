package nodeagent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// hostAgent is an agent for hostNetwork pods (no CNI) whose containers run
// through the test binary's shim; every image file is exe.
func hostAgent(t *testing.T, exe string, pods ...*corev1.Pod) *Agent {
	dir := t.TempDir()
	objects := make([]runtime.Object, 0, len(pods))
	for _, p := range pods {
		objects = append(objects, p)
	}
	client := fake.NewClientset(objects...)
	return &Agent{
		cfg: Config{NodeName: "n1", NodeIP: "192.0.2.1", LogDir: filepath.Join(dir, "logs"), PodsDir: filepath.Join(dir, "pods"),
			ContainerInit: testContainerInit(), Binaries: map[string]string{BinaryProbe: exe, BinaryCLI: exe, BinaryCNI: exe,
				BinaryRoutes: exe, BinaryEnforcer: exe}, Log: slog.New(slog.DiscardHandler)},
		client: client,
		pods:   map[string]*podRuntime{},
		lister: func(key string) (*corev1.Pod, bool, error) {
			obj, err := client.CoreV1().Pods(strings.Split(key, "/")[0]).Get(context.Background(), strings.Split(key, "/")[1], metav1.GetOptions{})
			return obj, err == nil, nil
		},
	}
}

// TestRestartPolicyBackoff: a container that fails is restarted with its exit in
// its status and restartCount counting; under Never, a container that
// completes makes the pod Succeeded.
func TestRestartPolicyBackoff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	pod := func(name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
			Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, RestartPolicy: policy, Containers: []corev1.Container{{
				Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", script},
			}}},
		}
	}
	failing, completing := pod("failing", corev1.RestartPolicyOnFailure, "sleep 0.2; exit 3"), pod("completing", corev1.RestartPolicyNever, "exit 0")
	a := hostAgent(t, "/bin/true", failing, completing)
	t.Cleanup(func() { _ = a.stopAll() })
	get := startPods(t, a, failing, completing)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, c := get("failing"), get("completing")
		fs := f.Status.ContainerStatuses[0]
		last := fs.LastTerminationState.Terminated
		if fs.RestartCount >= 1 && last != nil && last.ExitCode == 3 && c.Status.Phase == corev1.PodSucceeded {
			if term := c.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" {
				t.Errorf("completed container state = %+v", c.Status.ContainerStatuses[0].State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: failing %+v; completing phase %s %+v", fs, c.Status.Phase, c.Status.ContainerStatuses)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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
	a := hostAgent(t, exits, pod)
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

// TestStandInEvent: a container of an unmapped image that declares ports
// runs a probe server on them, and an event on the pod says so.
func TestStandInEvent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	server := filepath.Join(dir, "netpolcheck-probe")
	if err := os.WriteFile(server, []byte("#!/bin/sh\necho \"$@\" > "+filepath.Join(dir, "args")+"\necho ready\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-web"},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{{
			Name: "nginx", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
	a := hostAgent(t, server, pod)
	t.Cleanup(func() { _ = a.stopAll() })
	if err := a.sync(context.Background(), podKey("ns", "web")); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if want := "serve --identity ns/web --container nginx --port 8080/TCP\n"; string(args) != want {
		t.Errorf("the stand-in ran with %q, want %q", args, want)
	}
	events, err := a.client.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].Reason != "StandIn" || !strings.Contains(events.Items[0].Message, "nginx:1.27") {
		t.Errorf("events = %+v, want one StandIn naming the image", events.Items)
	}
}

// startPods syncs each pod on a, as the agent's queue would, and returns a
// getter of a pod of namespace ns by name.
func startPods(t *testing.T, a *Agent, pods ...*corev1.Pod) func(name string) *corev1.Pod {
	t.Helper()
	for _, p := range pods {
		if err := a.sync(context.Background(), podKey(p.Namespace, p.Name)); err != nil {
			t.Fatalf("starting %s: %v", p.Name, err)
		}
	}
	return func(name string) *corev1.Pod {
		t.Helper()
		p, err := a.client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}
