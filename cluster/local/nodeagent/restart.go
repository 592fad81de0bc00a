package nodeagent

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Restarts follow the pod's restartPolicy (Always, OnFailure, Never) with
// the kubelet's crash-loop backoff: the first restart after a second, then
// 10s doubling up to 5 minutes, back to the start once a container has run
// for 10 minutes. Every exit is written to the container's status (its last
// termination with the exit code, restartCount, waiting reason
// CrashLoopBackOff while it backs off, or terminated for good), and the pod
// is Succeeded or Failed once no container runs or will run again.
const (
	firstRestartDelay = time.Second
	backoffStart      = 10 * time.Second
	backoffMax        = 5 * time.Minute
	backoffReset      = 10 * time.Minute
)

// restartDelay is the wait before restart number n+1 after n backoffs.
func restartDelay(n int) time.Duration {
	if n == 0 {
		return firstRestartDelay
	}
	d := backoffStart
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// terminated is the state of a container that exited with code.
func terminated(code int32, started, finished time.Time) *corev1.ContainerStateTerminated {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
		StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished)}
}

// afterExit handles a container's exit (not caused by stop): it reports the
// exit and restarts the container when the policy says so, after the
// backoff.
func (a *Agent) afterExit(rt *podRuntime, p *process, started time.Time, state *os.ProcessState) {
	now := time.Now()
	code := exitCode(state)
	term := terminated(code, started, now)
	restart := restarts(rt.restartPolicy, p.spec, state)
	p.mu.Lock()
	if now.Sub(started) >= backoffReset {
		p.backoffs = 0
	}
	delay := restartDelay(p.backoffs)
	p.backoffs++
	p.mu.Unlock()
	a.cfg.Log.Warn("container exited", "pod", rt.key, "container", p.container, "code", code, "restart", restart, "delay", delay, "log", p.logPath)
	// The exit is reported once the pod's start is: a container that ends
	// quickly would otherwise have its exit overwritten by the start.
	select {
	case <-rt.running:
	case <-rt.done.Done():
		return
	}
	a.reportContainer(rt, p.container, func(s *corev1.ContainerStatus) {
		s.Ready = false
		s.LastTerminationState = corev1.ContainerState{Terminated: term}
		if restart {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container %s", delay, p.container)}}
		} else {
			s.State = corev1.ContainerState{Terminated: term}
		}
	})
	if !restart {
		if rt.completed(p) {
			a.stopSidecars(rt)
		}
		return
	}
	select {
	case <-time.After(delay):
	case <-rt.done.Done():
		return
	}
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return
	}
	if err := a.startProcess(rt, p); err != nil {
		a.cfg.Log.Error("restarting container", "pod", rt.key, "container", p.container, "err", err)
		return
	}
	p.mu.Lock()
	count := p.restarts // counted by startProcess
	p.mu.Unlock()
	a.reportContainer(rt, p.container, func(s *corev1.ContainerStatus) {
		// The run starts over: not ready until its probes pass again.
		started, ready := startsAs(p.spec)
		s.Ready, s.Started, s.RestartCount = ready, &started, int32(count)
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	})
}

// reportContainer changes one container's status, then the pod's phase and
// readiness to match all of them.
func (a *Agent) reportContainer(rt *podRuntime, container string, change func(*corev1.ContainerStatus)) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: rt.namespace, Name: rt.name, UID: rt.uid}}
	ctx, cancel := context.WithTimeout(rt.done, 30*time.Second)
	defer cancel()
	err := a.updateStatus(ctx, pod, func(s *corev1.PodStatus, _ *corev1.PodSpec) {
		for _, statuses := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
			for i := range statuses {
				if statuses[i].Name == container {
					change(&statuses[i]) // a sidecar's is among the init containers'
				}
			}
		}
		summarize(s)
	})
	if err != nil && ctx.Err() == nil {
		a.cfg.Log.Warn("reporting a container's state", "pod", rt.key, "container", container, "err", err)
	}
}

// summarize sets the pod's phase and Ready conditions from its containers:
// Succeeded or Failed once every container has terminated for good,
// Ready while every container and init container is (a completed init
// container is ready, a sidecar as its probes say).
func summarize(s *corev1.PodStatus) {
	ready, done, failed := true, true, false
	for _, c := range s.InitContainerStatuses {
		ready = ready && c.Ready
	}
	for _, c := range s.ContainerStatuses {
		ready = ready && c.Ready
		switch t := c.State.Terminated; {
		case t == nil:
			done = false
		case t.ExitCode != 0:
			failed = true
		}
	}
	if done && len(s.ContainerStatuses) > 0 {
		s.Phase = corev1.PodSucceeded
		if failed {
			s.Phase = corev1.PodFailed
		}
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status != status {
			c.Status, c.LastTransitionTime = status, metav1.Now()
		}
	}
}
