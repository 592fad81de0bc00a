package nodeagent

import (
	"os"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// restarts says whether container c, which exited, starts again: a sidecar
// (its own restartPolicy Always) always does; any other container by the
// pod's restartPolicy: Always (the default) restarts every exit, OnFailure
// only a failed one, Never none.
func restarts(policy corev1.RestartPolicy, c *corev1.Container, state *os.ProcessState) bool {
	if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
		return true
	}
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
