package cni

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func daemonSet(name string, generation, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Generation: generation},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
			UpdatedNumberScheduled: updated, NumberAvailable: available},
	}
}

func deployment(name string, replicas, updated, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, UpdatedReplicas: updated, AvailableReplicas: available},
	}
}

func crashingPod(app string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-x1", Namespace: "kube-system", Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: "kind-worker"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
		}}},
	}
}

func TestWait(t *testing.T) {
	ds := Workload{"DaemonSet", "kube-system", "node"}
	dep := Workload{"Deployment", "kube-system", "controllers"}
	cases := []struct {
		name    string
		objects []runtime.Object
		want    []string // substrings of the error; none: ready
	}{
		{
			name:    "ready",
			objects: []runtime.Object{daemonSet("node", 2, 2, 3, 3, 3), deployment("controllers", 1, 1, 1)},
		},
		{
			name:    "pods not available, with their reasons",
			objects: []runtime.Object{daemonSet("node", 1, 1, 3, 3, 1), deployment("controllers", 1, 1, 0), crashingPod("node")},
			want: []string{"not ready after 50ms", "DaemonSet kube-system/node: 1 of 3 pods available", "Deployment kube-system/controllers: 0 of 1 replicas available",
				"pod kube-system/node-x1 (kind-worker): container agent waiting: CrashLoopBackOff back-off 40s"},
		},
		{
			name:    "update not observed",
			objects: []runtime.Object{daemonSet("node", 2, 1, 3, 3, 3), deployment("controllers", 1, 1, 1)},
			want:    []string{"DaemonSet kube-system/node: update not observed yet"},
		},
		{
			name:    "nothing scheduled",
			objects: []runtime.Object{daemonSet("node", 1, 1, 0, 0, 0), deployment("controllers", 1, 1, 1)},
			want:    []string{"DaemonSet kube-system/node: no pods scheduled yet"},
		},
		{
			name:    "rolling out",
			objects: []runtime.Object{daemonSet("node", 1, 1, 3, 1, 3), deployment("controllers", 2, 1, 2)},
			want:    []string{"1 of 3 pods updated", "1 of 2 replicas updated"},
		},
		{
			name:    "missing",
			objects: []runtime.Object{deployment("controllers", 1, 1, 1)},
			want:    []string{"DaemonSet kube-system/node: not found"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.objects...)
			err := Wait(context.Background(), client, []Workload{ds, dep}, 50*time.Millisecond)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("Wait succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	client := fake.NewClientset(daemonSet("node", 1, 1, 3, 0, 0))
	err := Wait(ctx, client, []Workload{{"DaemonSet", "kube-system", "node"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v, want the cancellation", err)
	}
}

// A read that fails while waiting (the client's rate limiter refuses a
// request that would end after the deadline; the API server hiccups) is
// one more reason the workload is not ready yet: Wait keeps polling, and a
// timeout still describes the workloads and their pods.
func TestWaitReadErrors(t *testing.T) {
	client := fake.NewClientset(daemonSet("node", 1, 1, 3, 3, 1), crashingPod("node"))
	reads := 0
	client.PrependReactor("get", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		reads++
		if reads == 1 {
			return true, nil, errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline")
		}
		return false, nil, nil
	})
	err := Wait(context.Background(), client, []Workload{{"DaemonSet", "kube-system", "node"}}, 50*time.Millisecond)
	for _, w := range []string{"not ready after 50ms", "DaemonSet kube-system/node:", "pod kube-system/node-x1 (kind-worker): container agent waiting: CrashLoopBackOff"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	reads = 0
	client = fake.NewClientset(daemonSet("node", 1, 1, 3, 3, 3))
	client.PrependReactor("get", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if reads++; reads == 1 {
			return true, nil, errors.New("etcdserver: leader changed")
		}
		return false, nil, nil
	})
	if err := Wait(context.Background(), client, []Workload{{"DaemonSet", "kube-system", "node"}}, 10*time.Second); err != nil {
		t.Errorf("a read that failed once: %v, want the wait to go on until ready", err)
	}
}
