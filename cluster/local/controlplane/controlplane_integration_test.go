package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
)

// ensureTestBinaries builds the control-plane binaries from the tools module
// next to this package. The first run on a machine compiles Kubernetes and
// takes several minutes (run go test with -timeout 30m); later runs reuse the
// cache in $NETPOLCHECK_CACHE or ~/.cache/netpolcheck.
func ensureTestBinaries(t *testing.T) Binaries {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	bins, err := EnsureBinaries(ctx, BuildOptions{SourceDir: "../kubebin", Progress: os.Stderr})
	if err != nil {
		t.Fatalf("EnsureBinaries: %v", err)
	}
	return bins
}

// startForTest starts a control plane in a fresh state dir and stops it
// when the test ends, whatever happened.
func startForTest(t *testing.T, bins Binaries) (*ControlPlane, string) {
	t.Helper()
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := Reap(ctx, stateDir); err != nil {
			t.Errorf("Reap in cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	cp, err := Start(ctx, Config{StateDir: stateDir, Binaries: bins})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("control plane ready in %s", time.Since(start).Round(time.Millisecond))
	return cp, stateDir
}

func TestControlPlane(t *testing.T) {
	bins := ensureTestBinaries(t)
	cp, stateDir := startForTest(t, bins)
	st, err := readState(stateDir)
	if err != nil || st == nil {
		t.Fatalf("state after Start: %v, %v", st, err)
	}
	checkLoopbackOnly(t, st.Processes)

	client, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("reports the built version", func(t *testing.T) {
		info, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if info.GitVersion != bins.Version {
			t.Errorf("server version = %s, want %s", info.GitVersion, bins.Version)
		}
	})

	t.Run("second start in the same state dir fails", func(t *testing.T) {
		_, err := Start(ctx, Config{StateDir: stateDir, Binaries: bins})
		if err == nil {
			t.Fatal("second Start succeeded")
		}
		for _, want := range []string{"already running", cp.Kubeconfig(), "netpolcheck local down"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("second Start error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("pod is scheduled once a node exists", func(t *testing.T) {
		testScheduling(ctx, t, client)
	})

	t.Run("namespace deletion", func(t *testing.T) {
		testNamespaceDeletion(ctx, t, client)
	})

	t.Run("reap from another process leaves no process behind", func(t *testing.T) {
		// `netpolcheck local down` runs in another process than `up`.
		stopStart := time.Now()
		reaper := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReapHelperProcess$")
		reaper.Env = append(os.Environ(), reapHelperEnv+"="+stateDir)
		if out, err := reaper.CombinedOutput(); err != nil {
			t.Fatalf("Reap in another process: %v\n%s", err, out)
		}
		t.Logf("stopped in %s", time.Since(stopStart).Round(time.Millisecond))
		for _, p := range st.Processes {
			if p.Alive() {
				t.Errorf("%s (pid %d) still runs after Stop", p.Name, p.PID)
			}
		}
		if pids := processesMentioning(t, stateDir); len(pids) > 0 {
			t.Errorf("processes still refer to %s after Stop: %v", stateDir, pids)
		}
		if _, err := os.Stat(statePath(stateDir)); !os.IsNotExist(err) {
			t.Errorf("state file still there after Stop (stat: %v)", err)
		}
	})
}

// reapHelperEnv names the state dir that TestReapHelperProcess reaps.
const reapHelperEnv = "NETPOLCHECK_TEST_REAP_STATE_DIR"

// TestReapHelperProcess is not a test of its own: TestControlPlane runs the
// test binary again with only this function and reapHelperEnv set, to stop
// the control plane from another process. Run directly, it does nothing.
func TestReapHelperProcess(t *testing.T) {
	stateDir := os.Getenv(reapHelperEnv)
	if stateDir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Reap(ctx, stateDir); err != nil {
		t.Fatalf("Reap: %v", err)
	}
}

// testScheduling creates a pod while the cluster has no node and checks that
// it stays unscheduled, then creates a Node object (no kubelet behind it) and
// checks that the scheduler binds the pod to it.
func testScheduling(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	ns := createNamespace(ctx, t, client, "npc-sched")
	pod, err := client.CoreV1().Pods(ns).Create(ctx, testPod("probe"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got.Spec.NodeName != "" {
			return false, fmt.Errorf("pod bound to %q while no node exists", got.Spec.NodeName)
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for the scheduler to report the pod unschedulable: %v", err)
	}

	node := testNode("npc-fake-node1", "10.244.1.0/24")
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Spec.NodeName == node.Name, nil
	})
	if err != nil {
		t.Fatalf("waiting for the pod to be bound to %s: %v", node.Name, err)
	}
	// Without a kubelet nobody confirms the graceful deletion of a bound
	// pod, so remove it at once.
	if err := client.CoreV1().Pods(ns).Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatalf("deleting the bound pod: %v", err)
	}
}

// testNamespaceDeletion deletes a namespace with content and checks that the
// namespace controller empties and removes it.
func testNamespaceDeletion(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	ns := createNamespace(ctx, t, client, "npc-delete")
	if _, err := client.CoreV1().Pods(ns).Create(ctx, testPod("pending"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	configMap := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, configMap, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating config map: %v", err)
	}
	start := time.Now()
	if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting namespace: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("waiting for namespace %s to be deleted: %v", ns, err)
	}
	t.Logf("namespace %s deleted in %s", ns, time.Since(start).Round(time.Millisecond))
}

// createNamespace creates a namespace and waits for its default service
// account, without which the ServiceAccount admission plugin rejects pods.
func createNamespace(ctx context.Context, t *testing.T, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("waiting for the default service account in %s: %v", ns.Name, err)
	}
	return ns.Name
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "serve-80-tcp", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

func testNode(name, podCIDR string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "NetpolcheckFakeNode"}},
		},
	}
}

// checkLoopbackOnly checks that no component listens on anything but
// 127.0.0.1, using the sockets in /proc/net/tcp and tcp6 owned by the
// components' processes.
func checkLoopbackOnly(t *testing.T, procs []detached.Process) {
	t.Helper()
	inodes := map[string]string{} // socket inode -> component
	for _, p := range procs {
		fdDir := filepath.Join("/proc", strconv.Itoa(p.PID), "fd")
		entries, err := os.ReadDir(fdDir)
		if err != nil {
			t.Fatalf("listing fds of %s: %v", p.Name, err)
		}
		for _, e := range entries {
			target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
			if err == nil && strings.HasPrefix(target, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = p.Name
			}
		}
	}
	const listen = "0A"
	listening := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != listen {
				continue
			}
			name, ours := inodes[fields[9]]
			if !ours {
				continue
			}
			listening++
			// 0100007F is 127.0.0.1 in /proc/net/tcp's byte order.
			if addr, _, _ := strings.Cut(fields[1], ":"); addr != "0100007F" {
				t.Errorf("%s listens on %s (%s), not on 127.0.0.1", name, fields[1], table)
			}
		}
	}
	if listening < len(procs) {
		t.Errorf("found %d listening sockets of %d components", listening, len(procs))
	}
}

// processesMentioning returns the PIDs of processes whose command line
// contains dir.
func processesMentioning(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestStartFailureCleansUp starts a control plane whose API server exits at
// once and checks that Start reports it and stops etcd again.
func TestStartFailureCleansUp(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() {
		if err := Reap(context.Background(), stateDir); err != nil {
			t.Errorf("Reap in cleanup: %v", err)
		}
	})
	broken := Binaries{Version: KubernetesVersion, APIServer: "/bin/false", ControllerManager: "/bin/false", Scheduler: "/bin/false"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Start(ctx, Config{StateDir: stateDir, Binaries: broken})
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver") || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Start with an API server that exits: err = %v, want one naming kube-apiserver", err)
	}
	if pids := processesMentioning(t, stateDir); len(pids) > 0 {
		t.Errorf("processes still refer to %s after the failed Start: %v", stateDir, pids)
	}
	if _, err := os.Stat(statePath(stateDir)); !os.IsNotExist(err) {
		t.Errorf("state file still there after the failed Start (stat: %v)", err)
	}
	if _, err := os.Stat(logPath(stateDir, "etcd")); err != nil {
		t.Errorf("the logs of the failed Start are gone: %v", err)
	}
}
