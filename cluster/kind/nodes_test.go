package kind

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name string, ready corev1.ConditionStatus, message string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Message: message}}
	}
	return n
}

func TestWaitNodesReady(t *testing.T) {
	cases := []struct {
		name  string
		nodes []runtime.Object
		want  []string // error substrings; none: ready
	}{
		{name: "ready", nodes: []runtime.Object{node("cp", "True", ""), node("w1", "True", "")}},
		{
			name:  "no pod network",
			nodes: []runtime.Object{node("cp", "True", ""), node("w1", "False", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady")},
			want:  []string{"nodes not ready after 50ms", "w1: NotReady container runtime network not ready"},
		},
		{
			name:  "not registered",
			nodes: []runtime.Object{node("cp", "True", ""), node("w1", "", "")},
			want:  []string{"w1: no Ready condition yet"},
		},
		{
			name:  "missing",
			nodes: []runtime.Object{node("cp", "True", "")},
			want:  []string{"1 of 2 nodes registered"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := waitNodesReady(context.Background(), fake.NewClientset(tc.nodes...), 2, 50*time.Millisecond)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}
