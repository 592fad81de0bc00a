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
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		state  *os.ProcessState
		want   bool
	}{
		{"", ok, true},
		{corev1.RestartPolicyAlways, ok, true},
		{corev1.RestartPolicyAlways, failed, true},
		{corev1.RestartPolicyOnFailure, ok, false},
		{corev1.RestartPolicyOnFailure, failed, true},
		{corev1.RestartPolicyOnFailure, killed, true},
		{corev1.RestartPolicyNever, ok, false},
		{corev1.RestartPolicyNever, failed, false},
	} {
		if got := restarts(tc.policy, tc.state); got != tc.want {
			t.Errorf("policy %q, exit code %d: restarts %v, want %v", tc.policy, exitCode(tc.state), got, tc.want)
		}
	}
}
