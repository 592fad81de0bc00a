package nodeagent

import (
	"context"
	"os"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// restarts says whether a container that exited starts again, by the pod's
// restartPolicy: Always (the default) restarts every exit, OnFailure only a
// failed one, Never none.
func restarts(policy corev1.RestartPolicy, state *os.ProcessState) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode(state) != 0
	}
	return true
}

// exitCode is the code a container runtime reports: the process's, or
// 128+signal for one killed by a signal.
func exitCode(state *os.ProcessState) int32 {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(state.ExitCode())
}

// terminated records that a container exited for good, and once every
// container of the pod has, reports the pod Succeeded (all exited 0) or
// Failed, with each container's exit code, as the kubelet does.
func (a *Agent) terminated(rt *podRuntime, p *process, state *os.ProcessState) {
	now := metav1.Now()
	p.mu.Lock()
	p.exit = &corev1.ContainerStateTerminated{ExitCode: exitCode(state), Reason: "Completed", FinishedAt: now}
	if p.exit.ExitCode != 0 {
		p.exit.Reason = "Error"
	}
	p.mu.Unlock()
	a.cfg.Log.Info("container terminated", "container", p.container, "exitCode", p.exit.ExitCode, "log", p.logDir)
	exits := map[string]*corev1.ContainerStateTerminated{}
	for _, q := range rt.procs {
		q.mu.Lock()
		exit := q.exit
		q.mu.Unlock()
		if exit == nil {
			return // another container still runs
		}
		exits[q.container] = exit
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.reportTerminated(ctx, rt.pod, exits); err != nil {
		a.cfg.Log.Error("reporting a terminated pod", "pod", podKey(rt.pod.Namespace, rt.pod.Name), "err", err)
	}
}

func (a *Agent) reportTerminated(ctx context.Context, pod *corev1.Pod, exits map[string]*corev1.ContainerStateTerminated) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest, err := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if latest.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		s := &latest.Status
		s.Phase = corev1.PodSucceeded
		for i := range s.ContainerStatuses {
			cs := &s.ContainerStatuses[i]
			exit, ok := exits[cs.Name]
			if !ok {
				continue
			}
			if exit.ExitCode != 0 {
				s.Phase = corev1.PodFailed
			}
			if cs.State.Running != nil {
				exit.StartedAt = cs.State.Running.StartedAt
			}
			cs.State = corev1.ContainerState{Terminated: exit}
			cs.Ready, cs.Started = false, new(false)
		}
		for i := range s.Conditions {
			if t := s.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
				s.Conditions[i].Status, s.Conditions[i].Reason = corev1.ConditionFalse, "PodCompleted"
				s.Conditions[i].LastTransitionTime = metav1.Now()
			}
		}
		_, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, latest, metav1.UpdateOptions{})
		return err
	})
}
