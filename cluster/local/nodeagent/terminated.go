package nodeagent

import (
	"os"
	"syscall"

	corev1 "k8s.io/api/core/v1"
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
