package local_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// TestPodSemantics runs pods as a kubelet would: agnhost from its image name
// in a shell, a pod that checks its own files, environment and DNS, and an
// image nothing maps.
func TestPodSemantics(t *testing.T) {
	c, client := startCluster(t, fmt.Sprintf("p%d", os.Getpid()), 2)
	ctx := context.Background()
	const ns = "pods-x"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	// The default ServiceAccount, which admission needs, comes from the
	// controller manager.
	waitFor(t, 30*time.Second, "the default service account", func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	t.Run("agnhost runs from its image name, as written in a shell", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "hostname", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: "node2", Containers: []corev1.Container{{
				Name: "a", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
				Command: []string{"/bin/bash", "-c", "/agnhost serve-hostname --port 9376"},
			}}},
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}))
		ip := waitRunning(t, client, ns, 1)["hostname"].Status.PodIP
		dial := kubeclient.NetnsDialer(netns.Path(c.Nodes[0].Netns))
		httpClient := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dial}}
		var body string
		waitFor(t, 10*time.Second, "serve-hostname answers from node1", func() bool {
			resp, err := httpClient.Get("http://" + net.JoinHostPort(ip, "9376"))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return true
		})
		if body != "hostname" {
			t.Errorf("serve-hostname said %q, want the pod's name (its hostname)", body)
		}
	})

	t.Run("a container sees its token, environment, DNS and nothing else", func(t *testing.T) {
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
		checks := []string{
			`test -s ` + sa + `/token`,
			`grep -q 'BEGIN CERTIFICATE' ` + sa + `/ca.crt`,
			`test "$(cat ` + sa + `/namespace)" = ` + ns,
			`test "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" = 10.96.0.1:443`,
			`test "$NODE/$POD_IP" = "node1/$(hostname -i | cut -d' ' -f1)"`,
			`test "$(hostname)" = checks`,
			`grep -qx 'nameserver 10.96.0.10' /etc/resolv.conf`,
			`grep -q 'search ` + ns + `.svc.cluster.local svc.cluster.local cluster.local' /etc/resolv.conf`,
			`test "$(env | cut -d= -f1 | grep -v -e ^KUBERNETES_ -e ^PWD$ -e ^SHLVL$ -e ^_$ | sort | tr '\n' ' ')" = "HOSTNAME NODE PATH POD_IP "`,
		}
		field := func(path string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "checks", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: "node1", RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev",
				Command: []string{"/bin/sh", "-c", "set -e; for c in \"$@\"; do sh -c \"$c\" || { echo \"failed: $c\"; exit 1; }; done", "checks"},
				Args:    checks,
				Env:     []corev1.EnvVar{{Name: "NODE", ValueFrom: field("spec.nodeName")}, {Name: "POD_IP", ValueFrom: field("status.podIP")}},
			}}},
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}))
		var got *corev1.Pod
		waitFor(t, 30*time.Second, "the checks pod to finish", func() bool {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "checks", metav1.GetOptions{})
			got = p
			return err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed)
		})
		if got.Status.Phase != corev1.PodSucceeded {
			log, _ := os.ReadFile(c.NodeFile("node1", "/var/log/pods/"+ns+"_checks_"+string(got.UID)[:8]+"/c.log"))
			t.Errorf("the checks pod %s: %+v\n%s", got.Status.Phase, got.Status.ContainerStatuses, log)
		}
	})

	t.Run("an image nothing maps waits with ErrImagePull", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: ns},
			Spec:       corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "p", Image: "registry.k8s.io/pause:3.10"}}},
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}))
		var waiting *corev1.ContainerStateWaiting
		waitFor(t, 20*time.Second, "ErrImagePull", func() bool {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "pause", metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 {
				return false
			}
			waiting = p.Status.ContainerStatuses[0].State.Waiting
			return waiting != nil && waiting.Reason == "ErrImagePull" && p.Status.Phase == corev1.PodPending
		})
		if !strings.Contains(waiting.Message, "docs/local.md") {
			t.Errorf("the message %q does not say how to map the image", waiting.Message)
		}
	})
}
