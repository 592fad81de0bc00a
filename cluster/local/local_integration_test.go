package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/internal/gobuild"
	inetns "github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
)

// buildBinaries builds every netpolcheck command into a temporary directory.
func buildBinaries(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := gobuild.Commands(dir, "github.com/netpolcheck/netpolcheck/cmd/..."); err != nil {
		t.Fatalf("building the binaries: %v", err)
	}
	return dir
}

// startCluster brings a local cluster up for the test; options adjust the
// defaults.
func startCluster(t *testing.T, name string, nodes int, options ...func(*local.Options)) (*local.Cluster, kubernetes.Interface) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	bin := buildBinaries(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a cold Kubernetes build takes minutes
	defer cancel()
	t.Cleanup(func() {
		if err := local.Down(context.Background(), name, stateDir); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	started := time.Now()
	opts := local.Options{Name: name, Nodes: nodes, StateDir: stateDir, BinDir: bin,
		Kube: localKube(), CoreDNS: controlplane.BuildOptions{SourceDir: "corednsbin"}, Progress: testWriter{t}}
	for _, o := range options {
		o(&opts)
	}
	c, err := local.Up(ctx, opts)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("cluster ready in %s", time.Since(started).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if c.CNI != local.CNIReference && c.CNI != local.CNINone {
			break // no reference enforcer runs
		}
		if _, err := os.Stat(c.EnforcerReadyFile(n.Name)); err != nil {
			t.Errorf("up returned before the enforcer of %s synced: %v", n.Name, err)
		}
	}
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c, client
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestLocalCluster(t *testing.T) {
	name := fmt.Sprintf("t%d", os.Getpid())
	c, client := startCluster(t, name, 2)
	ctx := context.Background()

	// A second up on the same state dir says a cluster runs.
	_, err := local.Up(ctx, local.Options{Name: name, StateDir: c.StateDir, BinDir: c.BinDir, Kube: localKube()})
	if err == nil || !strings.Contains(err.Error(), "is already running") {
		t.Errorf("second up: %v", err)
	}

	ns := "lc-x"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	for i, pod := range []string{"a", "b"} {
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, pod, fmt.Sprintf("node%d", i+1)), metav1.CreateOptions{}))
	}
	pods := waitRunning(t, client, ns, 2)
	a, b := pods["a"], pods["b"]
	if a.Spec.NodeName == b.Spec.NodeName {
		t.Fatalf("both pods on %s", a.Spec.NodeName)
	}
	for _, p := range pods {
		if p.Status.PodIP == "" || !strings.HasPrefix(p.Status.PodIP, "10.244.") {
			t.Fatalf("pod %s has IP %q", p.Name, p.Status.PodIP)
		}
	}
	ext, err := c.AddExternal(ctx, "internet", []netip.Addr{netip.MustParseAddr("192.0.2.10")}, []string{"80/TCP"})
	if err != nil {
		t.Fatal(err)
	}

	// Probes across nodes and to the external host connect, with the right peers.
	aNetns := podNetns(t, c, a)
	expectProbe(t, c, aNetns, b.Status.PodIP, ns+"/b", matrix.Connected)
	expectProbe(t, c, podNetns(t, c, b), a.Status.PodIP, ns+"/a", matrix.Connected)
	expectProbe(t, c, aNetns, "192.0.2.10", "internet", matrix.Connected)
	expectProbe(t, c, netns.Path(ext.Netns), b.Status.PodIP, ns+"/b", matrix.Connected)

	// A default-deny ingress policy is enforced within a second.
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	applied := time.Now()
	noErr(t)(client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{}))
	var took time.Duration
	for {
		res := probe(t, c, aNetns, b.Status.PodIP, ns+"/b", 200*time.Millisecond)
		if res.Outcome != matrix.Connected {
			took = time.Since(applied)
			break
		}
		if time.Since(applied) > 10*time.Second {
			t.Fatal("default deny not enforced after 10s")
		}
	}
	t.Logf("default deny enforced %s after the create", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("default deny took %s to be enforced, want under 1s", took)
	}
	expectProbe(t, c, aNetns, "192.0.2.10", "internet", matrix.Connected) // egress untouched

	// netpolcheck probe sees the same: every cell agrees with the policy.
	out, err := exec.Command(filepath.Join(c.BinDir, local.CLIBinary), "probe", "--local", name, "--local-state", c.StateDir,
		"--namespaces", ns).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 pods, 1 policies, 4 cells probed") || !strings.Contains(string(out), "4 agree") {
		t.Errorf("netpolcheck probe: %v\n%s", err, out)
	}

	// Deleting a pod removes its namespace and the object.
	if err := client.CoreV1().Pods(ns).Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "pod a gone", func() bool {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "a", metav1.GetOptions{})
		_, statErr := os.Stat(aNetns)
		return apierrors.IsNotFound(err) && os.IsNotExist(statErr)
	})
	// Deleting the namespace removes the rest.
	bNetns := podNetns(t, c, b)
	if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "namespace gone", func() bool {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		_, statErr := os.Stat(bNetns)
		return apierrors.IsNotFound(err) && os.IsNotExist(statErr)
	})

	// Down leaves nothing: no namespace, no process, no state.
	if err := local.Down(ctx, name, c.StateDir); err != nil {
		t.Fatal(err)
	}
	if left, _ := netns.List("npc-" + name + "-"); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range c.Processes {
		if p.Alive() {
			t.Errorf("process %s (pid %d) still runs", p.Name, p.PID)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", c.StateDir).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("processes still mention %s: %s", c.StateDir, out)
	}
	if _, err := os.Stat(c.StateDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(c.StateDir)
		t.Errorf("state dir left behind: %v (%d entries)", err, len(entries))
	}
}

// localKube points at the Kubernetes tools module of this checkout.
func localKube() controlplane.BuildOptions {
	return controlplane.BuildOptions{SourceDir: "kubebin"}
}

func probePod(ns, name, node string) *corev1.Pod {
	env := []corev1.EnvVar{
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "serve-80-tcp", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Env: env,
				Command: []string{"/netpolcheck-probe", "serve", "--identity", "$(POD_NAMESPACE)/$(POD_NAME)", "--port", "80/TCP"},
				Ports:   []corev1.ContainerPort{{Name: "serve-80-tcp", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
}

// noErr returns a function that fails the test if a call returned an error.
func noErr(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func waitRunning(t *testing.T, client kubernetes.Interface, ns string, n int) map[string]corev1.Pod {
	t.Helper()
	out := map[string]corev1.Pod{}
	waitFor(t, 30*time.Second, fmt.Sprintf("%d pods running", n), func() bool {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				out[p.Name] = p
			}
		}
		return len(out) == n
	})
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// podNetns returns where this machine opens the pod's network namespace
// (in its node's filesystem view).
func podNetns(t *testing.T, c *local.Cluster, pod corev1.Pod) string {
	t.Helper()
	path, err := c.PodNetnsPath(pod.Spec.NodeName, string(pod.UID))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// probe runs one probe of port 80/TCP from inside the network namespace at
// the path fromNetns with the probe binary.
func probe(t *testing.T, c *local.Cluster, fromNetns, host, expect string, timeout time.Duration) matrix.Result {
	t.Helper()
	return probePort(t, c, fromNetns, host, "80", expect, timeout)
}

// probePort runs one TCP probe from inside a network namespace.
func probePort(t *testing.T, c *local.Cluster, fromNetns, host, port, expect string, timeout time.Duration) matrix.Result {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.BinDir, local.ProbeBinary), "connect", "--host", host, "--port", port,
		"--protocol", "TCP", "--expect", expect, "--timeout", timeout.String())
	var out strings.Builder
	cmd.Stdout = &out
	if err := inetns.Start(fromNetns, cmd); err != nil {
		t.Fatalf("probing from %s: %v", fromNetns, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probing from %s: %v", fromNetns, err)
	}
	var res matrix.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("probe output %q: %v", out.String(), err)
	}
	return res
}

func expectProbe(t *testing.T, c *local.Cluster, fromNetns, host, expect string, want matrix.Outcome) {
	t.Helper()
	if res := probe(t, c, fromNetns, host, expect, time.Second); res.Outcome != want {
		t.Errorf("%s -> %s (%s): %s (%s %s), want %s", fromNetns, host, expect, res.Outcome, res.Peer, res.Detail, want)
	}
}
