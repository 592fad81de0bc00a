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
