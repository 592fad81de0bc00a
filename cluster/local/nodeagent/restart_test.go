package nodeagent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestRestartDelay(t *testing.T) {
	want := []time.Duration{time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for n, w := range want {
		if got := restartDelay(n); got != w {
			t.Errorf("restartDelay(%d) = %s, want %s", n, got, w)
		}
	}
}

func TestSummarize(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := func(code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
	}
	for _, tt := range []struct {
		name      string
		states    []corev1.ContainerState
		ready     []bool
		wantPhase corev1.PodPhase
		wantReady corev1.ConditionStatus
	}{
		{"all running and ready", []corev1.ContainerState{running, running}, []bool{true, true}, corev1.PodRunning, corev1.ConditionTrue},
		{"one backing off", []corev1.ContainerState{running, {Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}, []bool{true, false}, corev1.PodRunning, corev1.ConditionFalse},
		{"all completed", []corev1.ContainerState{done(0), done(0)}, []bool{false, false}, corev1.PodSucceeded, corev1.ConditionFalse},
		{"one failed", []corev1.ContainerState{done(0), done(1)}, []bool{false, false}, corev1.PodFailed, corev1.ConditionFalse},
		{"one still running", []corev1.ContainerState{done(1), running}, []bool{false, true}, corev1.PodRunning, corev1.ConditionFalse},
	} {
		s := &corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}}
		for i, st := range tt.states {
			s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{State: st, Ready: tt.ready[i]})
		}
		summarize(s)
		if s.Phase != tt.wantPhase || s.Conditions[0].Status != tt.wantReady || s.Conditions[1].Status != tt.wantReady {
			t.Errorf("%s: phase %s, ready %s; want %s, %s", tt.name, s.Phase, s.Conditions[0].Status, tt.wantPhase, tt.wantReady)
		}
	}
}
