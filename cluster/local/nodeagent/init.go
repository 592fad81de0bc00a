package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local/containerinit"
	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// errPodFailed ends a pod's start for good: an init container failed and
// the pod's restartPolicy is Never (the pod is reported Failed).
var errPodFailed = errors.New("pod failed")

// shimArgv writes the container's spec next to its root and returns its
// shim's command line.
func (a *Agent) shimArgv(l launch) ([]string, error) {
	if err := os.MkdirAll(l.spec.Root, 0o755); err != nil {
		return nil, err
	}
	specFile := filepath.Join(filepath.Dir(l.spec.Root), "spec.json")
	if err := containerinit.Write(specFile, l.spec); err != nil {
		return nil, err
	}
	return append(append([]string(nil), a.cfg.ContainerInit...), specFile), nil
}

// runInitContainers runs the pod's init containers one after the other,
// each to completion, as the kubelet does before it starts the others, and
// returns their statuses. One that fails fails the start (which is retried
// with backoff), or, under restartPolicy Never, the pod: it is reported
// Failed and errPodFailed returned. Sidecars (init containers with
// restartPolicy Always) are left to run with the containers.
func (a *Agent) runInitContainers(ctx context.Context, rt *podRuntime, pod *corev1.Pod, vols podVolumes, logDir string) ([]corev1.ContainerStatus, error) {
	var statuses []corev1.ContainerStatus
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if matrix.IsSidecar(c) {
			continue // runs with the containers, see servingContainers
		}
		l, err := a.containerLaunch(ctx, pod, c, vols, rt.dir)
		if err != nil {
			return nil, fmt.Errorf("init container %s: %w", c.Name, err)
		}
		argv, err := a.shimArgv(l)
		if err != nil {
			return nil, fmt.Errorf("init container %s: %w", c.Name, err)
		}
		logPath := logPath(filepath.Join(a.cfg.LogDir, logDir, c.Name), 0)
		started := time.Now()
		cmd := shimCommand(argv, l.spec.Hostname != "")
		runErr := runToCompletion(ctx, rt, cmd, logPath)
		if runErr != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		code := int32(128) // it did not start
		if cmd.ProcessState != nil {
			code = exitCode(cmd.ProcessState)
		}
		term := terminated(code, started, time.Now())
		statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
			State: corev1.ContainerState{Terminated: term}})
		if term.ExitCode == 0 {
			continue
		}
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			return nil, fmt.Errorf("init container %s exited with %d (log: %s)", c.Name, term.ExitCode, logPath)
		}
		err = a.updateStatus(ctx, pod, func(s *corev1.PodStatus, _ *corev1.PodSpec) {
			s.Phase = corev1.PodFailed
			s.HostIP, s.HostIPs = a.cfg.NodeIP, []corev1.HostIP{{IP: a.cfg.NodeIP}}
			s.PodIP, s.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
			s.InitContainerStatuses = statuses
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse,
				Reason: "PodFailed", LastTransitionTime: metav1.Now()}}
		})
		if err != nil {
			return nil, fmt.Errorf("reporting pod %s/%s failed: %w", pod.Namespace, pod.Name, err)
		}
		return nil, errPodFailed
	}
	return statuses, nil
}

// runToCompletion runs a container's shim in the pod's namespace, its
// output in the CRI log at path, until it exits (or ctx ends: then it is
// killed).
func runToCompletion(ctx context.Context, rt *podRuntime, cmd *exec.Cmd, path string) error {
	log, err := openContainerLog(path)
	if err != nil {
		return err
	}
	defer log.close()
	cmd.Stdout = log.stream(kubeletapi.StreamStdout, nil)
	cmd.Stderr = log.stream(kubeletapi.StreamStderr, nil)
	if err := rt.start(cmd); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}
