package main

import (
	"bytes"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A finished Job whose log holds no reports (the run stopped before any
// case) is an error that shows the end of the log.
func TestJobReportsWithoutBundle(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "netpolcheck", Namespace: "np"},
		Status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "netpolcheck-x", Namespace: "np", Labels: map[string]string{batchv1.JobNameLabel: "netpolcheck"}}}
	client := fake.NewClientset(job, pod)
	var stdout bytes.Buffer
	err := jobReports(t.Context(), client, "np", "netpolcheck", t.TempDir(), &stdout)
	// The fake client's log of every container is "fake logs".
	if err == nil || !strings.Contains(err.Error(), "job np/netpolcheck failed without reports; the end of its log:\nfake logs") {
		t.Errorf("jobReports: %v", err)
	}
}

func TestJobOutcomeAndLastLines(t *testing.T) {
	for _, tc := range []struct {
		conditions []batchv1.JobCondition
		want       string
	}{
		{nil, ""},
		{[]batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}, "succeeded"},
		{[]batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionFalse}}, ""},
		{[]batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}, "failed"},
	} {
		if got := jobOutcome(&batchv1.Job{Status: batchv1.JobStatus{Conditions: tc.conditions}}); got != tc.want {
			t.Errorf("jobOutcome(%v) = %q, want %q", tc.conditions, got, tc.want)
		}
	}
	if got := lastLines([]byte("a\nb\nc\n"), 2); got != "b\nc" {
		t.Errorf("lastLines = %q", got)
	}
}
