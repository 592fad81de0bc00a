package nodeagent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProbeRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	for _, tt := range []struct {
		name    string
		handler corev1.ProbeHandler
		ok      bool
	}{
		{"tcp open", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}, true},
		{"tcp by port name", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}, true},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}}, false},
		{"http 200", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, true},
		{"http 503", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/bad", Port: intstr.FromString("http")}}, false},
		{"unknown port name", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("nope")}}, false},
	} {
		pr := &prober{probe: &corev1.Probe{ProbeHandler: tt.handler}, container: c, podIP: host}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := pr.run(ctx)
		cancel()
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want success %v", tt.name, err, tt.ok)
		}
	}
}

// TestReadinessAndLiveness: a readiness probe keeps a container unready
// until it succeeds; a failing liveness probe kills the container, which is
// restarted.
func TestReadinessAndLiveness(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	flag := dir + "/ready"
	probe := func(command string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", command}}},
			PeriodSeconds: 1, FailureThreshold: 1}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probed", Namespace: "ns", UID: types.UID("uid-probed")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{
			{Name: "r", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", "sleep 60"},
				ReadinessProbe: probe("test -e " + flag)},
			{Name: "l", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", "sleep 60"},
				LivenessProbe: probe("test -n \"$NOT_SET\"")},
		}},
	}
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	if err := a.sync(context.Background(), podKey("ns", "probed")); err != nil {
		t.Fatal(err)
	}
	status := func() map[string]corev1.ContainerStatus {
		p, err := a.client.CoreV1().Pods("ns").Get(context.Background(), "probed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]corev1.ContainerStatus{}
		for _, s := range p.Status.ContainerStatuses {
			out[s.Name] = s
		}
		return out
	}
	if s := status()["r"]; s.Ready {
		t.Error("the container with a failing readiness probe is Ready")
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Second)
	for {
		s := status()
		if s["r"].Ready && s["l"].RestartCount >= 1 {
			if last := s["l"].LastTerminationState.Terminated; last == nil || last.ExitCode != 137 {
				t.Errorf("the killed container's last state = %+v, want exit 137", s["l"].LastTerminationState)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 6s: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// podStatus reads a pod's status back from the agent's client: the pod and
// its containers' statuses by name.
func podStatus(t *testing.T, a *Agent, ns, name string) (corev1.PodStatus, map[string]corev1.ContainerStatus) {
	t.Helper()
	p, err := a.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.ContainerStatus{}
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		out[s.Name] = s
	}
	return p.Status, out
}

func podReady(s corev1.PodStatus) bool {
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestStartupProbe: until a container's startup probe succeeds it is
// neither started nor ready and its liveness probe does not run; a startup
// probe that keeps failing kills the container, which restarts.
func TestStartupProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	flag := t.TempDir() + "/started"
	probe := func(command string, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", command}}},
			PeriodSeconds: 1, FailureThreshold: failures}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "startup", Namespace: "ns", UID: types.UID("uid-startup")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{
			// Its liveness probe would kill it at once, were it not held
			// off by the startup probe.
			{Name: "slow", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", "sleep 60"},
				StartupProbe: probe("test -e "+flag, 60), LivenessProbe: probe("false", 1)},
			{Name: "never", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", "sleep 60"},
				StartupProbe: probe("false", 2)},
		}},
	}
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	if err := a.sync(context.Background(), podKey("ns", "startup")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pod, s := podStatus(t, a, "ns", "startup")
		if slow := s["slow"]; slow.Ready || (slow.Started != nil && *slow.Started) || slow.RestartCount != 0 || podReady(pod) {
			t.Fatalf("before its startup probe passed: %+v (pod ready %v)", slow, podReady(pod))
		}
		if never := s["never"]; never.RestartCount >= 1 {
			if last := never.LastTerminationState.Terminated; last == nil || last.ExitCode != 137 {
				t.Errorf("the container its startup probe killed: last state %+v, want exit 137", never.LastTerminationState)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing startup probe did not kill its container in 10s: %+v", s["never"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Started, then its liveness probe, no longer held off, kills it.
	var sawStarted bool
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, s := podStatus(t, a, "ns", "startup")
		slow := s["slow"]
		sawStarted = sawStarted || slow.Started != nil && *slow.Started && slow.Ready
		if sawStarted && slow.RestartCount >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the startup probe passed, 10s: started and ready seen %v, status %+v", sawStarted, slow)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadinessAfterRestart: a restarted container is not ready (nor its
// pod) until its readiness probe passes again.
func TestReadinessAfterRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	marker := t.TempDir() + "/ran"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "rerun", Namespace: "ns", UID: types.UID("uid-rerun")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{{
			Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev",
			// The first run exits after 3 s, the second keeps running.
			Command: []string{"/bin/sh", "-c", "test -e " + marker + " && exec sleep 60; touch " + marker + "; sleep 3; exit 1"},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
				InitialDelaySeconds: 1, PeriodSeconds: 1},
		}}},
	}
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	if err := a.sync(context.Background(), podKey("ns", "rerun")); err != nil {
		t.Fatal(err)
	}
	var readyBefore, unreadyAfter bool
	deadline := time.Now().Add(15 * time.Second)
	for {
		pod, s := podStatus(t, a, "ns", "rerun")
		c := s["c"]
		switch {
		case c.RestartCount == 0:
			readyBefore = readyBefore || c.Ready && podReady(pod)
		case c.State.Running != nil && !c.Ready && !podReady(pod):
			unreadyAfter = true
		case c.State.Running != nil && c.Ready && podReady(pod) && unreadyAfter:
			if !readyBefore {
				t.Error("the first run was never reported ready")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s: ready before the restart %v, unready after it %v; status %+v", readyBefore, unreadyAfter, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A readiness probe held off by a startup probe runs as soon as the startup
// probe passes, as the kubelet triggers it, not a readiness period later.
func TestReadinessRunsWhenStartupPasses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	exec := func(command string, period int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", command}}},
			PeriodSeconds: period}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gated", Namespace: "ns", UID: types.UID("uid-gated")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{
			{Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", "sleep 60"},
				StartupProbe: exec("true", 1), ReadinessProbe: exec("true", 30)},
		}},
	}
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	start := time.Now()
	if err := a.sync(context.Background(), podKey("ns", "gated")); err != nil {
		t.Fatal(err)
	}
	for {
		pod, s := podStatus(t, a, "ns", "gated")
		if s["c"].Ready && podReady(pod) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not ready 5s after start with a startup probe that passes at once (readiness period 30s): %+v", s["c"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And it stays ready: reporting the container started must not undo
	// the readiness probe's result when that came first.
	for settle := time.Now(); time.Since(settle) < 2*time.Second; time.Sleep(50 * time.Millisecond) {
		if pod, s := podStatus(t, a, "ns", "gated"); !s["c"].Ready || !podReady(pod) {
			t.Fatalf("ready, then not ready with its probes passing: %+v", s["c"])
		}
	}
}
