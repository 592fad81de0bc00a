package nodeagent

import (
	"os"
	"os/exec"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func exited(t *testing.T, script string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	_ = cmd.Run()
	return cmd.ProcessState
}

func TestRestartPolicy(t *testing.T) {
	ok, failed, killed := exited(t, "exit 0"), exited(t, "exit 3"), exited(t, "kill -9 $$")
	if exitCode(ok) != 0 || exitCode(failed) != 3 || exitCode(killed) != 137 {
		t.Fatalf("exit codes %d %d %d, want 0 3 137", exitCode(ok), exitCode(failed), exitCode(killed))
	}
	always := corev1.ContainerRestartPolicyAlways
	container, sidecar := &corev1.Container{Name: "c"}, &corev1.Container{Name: "s", RestartPolicy: &always}
	for _, tc := range []struct {
		policy    corev1.RestartPolicy
		container *corev1.Container
		state     *os.ProcessState
		want      bool
	}{
		{"", container, ok, true},
		{corev1.RestartPolicyAlways, container, ok, true},
		{corev1.RestartPolicyAlways, container, failed, true},
		{corev1.RestartPolicyOnFailure, container, ok, false},
		{corev1.RestartPolicyOnFailure, container, failed, true},
		{corev1.RestartPolicyOnFailure, container, killed, true},
		{corev1.RestartPolicyNever, container, ok, false},
		{corev1.RestartPolicyNever, container, failed, false},
		// A sidecar restarts whatever the pod's policy.
		{corev1.RestartPolicyNever, sidecar, ok, true},
		{corev1.RestartPolicyOnFailure, sidecar, ok, true},
	} {
		if got := restarts(tc.policy, tc.container, tc.state); got != tc.want {
			t.Errorf("policy %q, container %s, exit code %d: restarts %v, want %v", tc.policy, tc.container.Name, exitCode(tc.state), got, tc.want)
		}
	}
}
