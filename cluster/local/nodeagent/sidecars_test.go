package nodeagent

import (
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

func TestInitContainerStatuses(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	spec := &corev1.PodSpec{InitContainers: []corev1.Container{
		{Name: "setup", Image: "busybox"},
		{Name: "proxy", Image: "agnhost", RestartPolicy: &always},
		{Name: "probed", Image: "agnhost", RestartPolicy: &always, ReadinessProbe: probe},
		{Name: "starting", Image: "agnhost", RestartPolicy: &always, StartupProbe: probe},
	}}
	completed := []corev1.ContainerStatus{{Name: "setup", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}
	now := metav1.Now()
	type view struct {
		name             string
		ready, started   bool
		running, stopped bool
	}
	var got []view
	for _, s := range initContainerStatuses(spec, completed, now) {
		got = append(got, view{s.Name, s.Ready, s.Started != nil && *s.Started, s.State.Running != nil, s.State.Terminated != nil})
	}
	want := []view{
		{"setup", true, false, false, true},
		{"proxy", true, true, true, false},
		{"probed", false, true, true, false},
		{"starting", false, false, true, false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("initContainerStatuses:\n got %+v\nwant %+v", got, want)
	}
}

// TestSidecarStatus: a running pod's sidecar is in its
// initContainerStatuses, started, counting its restarts, ready (and with it
// the pod) once its readiness probe passes.
func TestSidecarStatus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	marker, flag := dir+"/ran", dir+"/ready"
	always := corev1.ContainerRestartPolicyAlways
	shell := func(name, script string) corev1.Container {
		return corev1.Container{Name: name, Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", script}}
	}
	setup := shell("setup", "true")
	// The sidecar's first run exits at once, the second keeps running.
	proxy := shell("proxy", "test -e "+marker+" && exec sleep 60; touch "+marker+"; exit 1")
	proxy.RestartPolicy = &always
	proxy.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", flag}}},
		PeriodSeconds: 1}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sidecar", Namespace: "ns", UID: types.UID("uid-sidecar")},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, InitContainers: []corev1.Container{setup, proxy},
			Containers: []corev1.Container{shell("app", "sleep 60")}},
	}
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	startPods(t, a, pod)
	wait := func(what string, done func(corev1.PodStatus, map[string]corev1.ContainerStatus) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			pod, s := podStatus(t, a, "ns", "sidecar")
			if done(pod, s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("10s without %s: %+v", what, pod.InitContainerStatuses)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("the sidecar restarted, running and not ready", func(pod corev1.PodStatus, s map[string]corev1.ContainerStatus) bool {
		p := s["proxy"]
		return p.RestartCount == 1 && p.State.Running != nil && p.Started != nil && *p.Started && !p.Ready && !podReady(pod) &&
			s["setup"].Ready && s["setup"].State.Terminated != nil && s["app"].Ready
	})
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wait("the sidecar and the pod ready", func(pod corev1.PodStatus, s map[string]corev1.ContainerStatus) bool {
		return s["proxy"].Ready && podReady(pod)
	})
	if names := func() (out []string) {
		st, _ := podStatus(t, a, "ns", "sidecar")
		for _, s := range st.InitContainerStatuses {
			out = append(out, s.Name)
		}
		return out
	}(); !slices.Equal(names, []string{"setup", "proxy"}) {
		t.Errorf("initContainerStatuses of %v, want setup, proxy", names)
	}
}

// sidecarPod is a hostNetwork pod with restartPolicy policy, one sidecar
// running sidecarScript and one container running mainScript.
func sidecarPod(name string, policy corev1.RestartPolicy, sidecarScript, mainScript string) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	image := "ghcr.io/netpolcheck/netpolcheck:dev"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, RestartPolicy: policy,
			InitContainers: []corev1.Container{{Name: "sidecar", Image: image, RestartPolicy: &always,
				Command: []string{"/bin/sh", "-c", sidecarScript}}},
			Containers: []corev1.Container{{Name: "main", Image: image, Command: []string{"/bin/sh", "-c", mainScript}}},
		},
	}
}

// TestSidecarsStopWhenContainersComplete: in a pod that restarts nothing
// (Never) or only failures (OnFailure), once every container has completed
// the kubelet stops the sidecars, reports them terminated, and the pod's
// phase follows its containers alone.
func TestSidecarsStopWhenContainersComplete(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	never := sidecarPod("never", corev1.RestartPolicyNever, "exec sleep 60", "sleep 0.3; exit 0")
	onFailure := sidecarPod("onfailure", corev1.RestartPolicyOnFailure, "exec sleep 60", "sleep 0.3; exit 0")
	a := hostAgent(t, "/bin/true", never, onFailure)
	t.Cleanup(func() { _ = a.stopAll() })
	get := startPods(t, a, never, onFailure)
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range []string{"never", "onfailure"} {
		for {
			p := get(name)
			var sidecar *corev1.ContainerStateTerminated
			if len(p.Status.InitContainerStatuses) == 1 {
				sidecar = p.Status.InitContainerStatuses[0].State.Terminated
			}
			if p.Status.Phase == corev1.PodSucceeded && sidecar != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after 10s: phase %s, sidecar %+v", name, p.Status.Phase, p.Status.InitContainerStatuses)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	a.mu.Lock()
	rt := a.pods[podKey("ns", "never")]
	a.mu.Unlock()
	for _, p := range rt.procs {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		select {
		case <-exited:
		default:
			t.Errorf("container %s still runs after the pod completed", p.container)
		}
	}
}

// TestSidecarRestartsUnderNever: a sidecar's own restartPolicy (Always)
// restarts it whatever the pod's is.
func TestSidecarRestartsUnderNever(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	pod := sidecarPod("p", corev1.RestartPolicyNever, "sleep 0.2; exit 1", "exec sleep 60")
	a := hostAgent(t, "/bin/true", pod)
	t.Cleanup(func() { _ = a.stopAll() })
	get := startPods(t, a, pod)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := get("p")
		if s := p.Status.InitContainerStatuses; len(s) == 1 && s[0].RestartCount >= 1 {
			if p.Status.Phase != corev1.PodRunning {
				t.Errorf("phase %s while its container runs", p.Status.Phase)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the sidecar that exited was not restarted: %+v", p.Status.InitContainerStatuses)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
