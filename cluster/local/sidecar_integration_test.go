package local_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// TestSidecarNamedPort: the node agent runs a pod's sidecar (a restartable
// init container) and the enforcer resolves a policy's named port against
// the sidecar's ports, as the engine does: only the sidecar's port is
// reachable.
func TestSidecarNamedPort(t *testing.T) {
	name := fmt.Sprintf("sc%d", os.Getpid())
	c, client := startCluster(t, name, 1)
	ctx := context.Background()
	ns := "sc-x"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	a := probePod(ns, "a", "node1")
	always := corev1.ContainerRestartPolicyAlways
	sidecar := a.Spec.Containers[0]
	sidecar.Name, sidecar.RestartPolicy = "proxy", &always
	sidecar.Command = []string{"/netpolcheck-probe", "serve", "--identity", "$(POD_NAMESPACE)/$(POD_NAME)", "--port", "8080/TCP"}
	sidecar.Ports = []corev1.ContainerPort{{Name: "proxy", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
	a.Spec.InitContainers = []corev1.Container{sidecar}
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, a, metav1.CreateOptions{}))
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "b", "node1"), metav1.CreateOptions{}))
	pods := waitRunning(t, client, ns, 2)
	aIP, bNetns := pods["a"].Status.PodIP, podNetns(t, c, pods["b"])
	if res := probePort(t, c, bNetns, aIP, "8080", ns+"/a", time.Second); res.Outcome != matrix.Connected {
		t.Fatalf("before any policy, b -> a:8080 (the sidecar): %s %s", res.Outcome, res.Detail)
	}

	proxy := intstr.FromString("proxy")
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "only-proxy", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "a"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &proxy}}}},
		},
	}
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{}))
	waitFor(t, 10*time.Second, "b -> a:80 denied", func() bool {
		return probePort(t, c, bNetns, aIP, "80", ns+"/a", 200*time.Millisecond).Outcome != matrix.Connected
	})
	if res := probePort(t, c, bNetns, aIP, "8080", ns+"/a", time.Second); res.Outcome != matrix.Connected {
		t.Errorf("with the policy, b -> a:8080 (the sidecar's named port): %s %s, want connected", res.Outcome, res.Detail)
	}
}
