package local_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
)

// TestNodeFilesystems runs a DaemonSet-like pair of pods, one per node, that
// write through hostPath volumes into /etc/cni/net.d, /var/lib and /run and
// look at /sys/fs/bpf: each node sees only its own files, this machine sees
// none of them at the real paths, /sys/fs/bpf is a fresh bpf filesystem per
// node, /run/xtables.lock is each node's own, and down leaves no mount, no
// namespace and no pod network namespace behind.
func TestNodeFilesystems(t *testing.T) {
	name := fmt.Sprintf("f%d", os.Getpid())
	c, client := startCluster(t, name, 2)
	ctx := context.Background()
	const ns = "nodefs"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	waitFor(t, 30*time.Second, "the default service account", func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	marker := "netpolcheck-test-" + name
	hostDirs := []string{"/etc/cni/net.d", "/var/lib", "/run", "/sys/fs/bpf"}
	script := strings.Join([]string{
		"set -e",
		"ls -A /host/sys/fs/bpf > /host/run/" + marker + ".bpf",
		"stat -f -c %T /host/sys/fs/bpf > /host/run/" + marker + ".bpftype",
		"for d in etc/cni/net.d var/lib run; do echo $NODE > /host/$d/" + marker + "; done",
		"mkdir /host/sys/fs/bpf/" + marker,
		"touch /host/run/xtables.lock",
	}, "\n")
	for _, node := range []string{"node1", "node2"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "ds-" + node, Namespace: ns},
			Spec: corev1.PodSpec{NodeName: node, RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "c", Image: "ghcr.io/netpolcheck/netpolcheck:dev", Command: []string{"/bin/sh", "-c", script},
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			}}},
		}
		for i, dir := range hostDirs {
			volume := fmt.Sprintf("host%d", i)
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: volume, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}})
			pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: volume, MountPath: "/host" + dir})
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}))
	}
	for _, node := range []string{"node1", "node2"} {
		var got *corev1.Pod
		waitFor(t, 30*time.Second, "the pod on "+node+" to finish", func() bool {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "ds-"+node, metav1.GetOptions{})
			got = p
			return err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed)
		})
		if got.Status.Phase != corev1.PodSucceeded {
			log, _ := os.ReadFile(c.NodeFile(node, "/var/log/pods/"+ns+"_ds-"+node+"_"+string(got.UID)[:8]+"/c/0.log"))
			t.Fatalf("the pod on %s: %s %+v\n%s", node, got.Status.Phase, got.Status.ContainerStatuses, log)
		}
	}

	inNode := func(node, path string) string {
		t.Helper()
		p, err := c.InNode(node, path)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, node := range []string{"node1", "node2"} {
		for _, dir := range []string{"/etc/cni/net.d", "/var/lib", "/run"} {
			file := filepath.Join(dir, marker)
			if got, err := os.ReadFile(inNode(node, file)); err != nil || strings.TrimSpace(string(got)) != node {
				t.Errorf("%s's %s = %q, %v; want its own file", node, file, got, err)
			}
			if got, err := os.ReadFile(c.NodeFile(node, file)); err != nil || strings.TrimSpace(string(got)) != node {
				t.Errorf("%s's %s in its state directory = %q, %v", node, file, got, err)
			}
		}
		for _, file := range []string{local.NodeConflist, "/opt/cni/bin/" + local.CNIBinary} {
			if _, err := os.Stat(inNode(node, file)); err != nil {
				t.Errorf("%s has no %s: %v", node, file, err)
			}
		}
		bpfType, _ := os.ReadFile(inNode(node, "/run/"+marker+".bpftype"))
		if strings.TrimSpace(string(bpfType)) != "bpf_fs" {
			t.Errorf("%s's /sys/fs/bpf is %q, want a bpf filesystem", node, bpfType)
		}
		// A fresh bpf filesystem holds only the kernel's preloaded iterators.
		atStart, _ := os.ReadFile(inNode(node, "/run/"+marker+".bpf"))
		for _, entry := range strings.Fields(string(atStart)) {
			if entry != "maps.debug" && entry != "progs.debug" {
				t.Errorf("%s's /sys/fs/bpf held %q at start", node, entry)
			}
		}
	}
	if _, err := os.Stat(inNode("node2", "/sys/fs/bpf/"+marker)); err != nil {
		t.Errorf("node2's /sys/fs/bpf lacks what its pod made: %v", err)
	}
	other, err := os.ReadFile(inNode("node2", "/run/"+marker))
	if err != nil || strings.TrimSpace(string(other)) != "node2" {
		t.Errorf("node2's /run/%s = %q, %v: not its own", marker, other, err)
	}
	for _, dir := range hostDirs {
		if _, err := os.Stat(filepath.Join(dir, marker)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("this machine's %s has the pods' %s (%v)", dir, marker, err)
		}
	}
	lock1, err1 := os.Stat(inNode("node1", "/run/xtables.lock"))
	lock2, err2 := os.Stat(inNode("node2", "/run/xtables.lock"))
	if err1 != nil || err2 != nil || os.SameFile(lock1, lock2) {
		t.Errorf("/run/xtables.lock of node1 and node2: %v, %v; the same file: %v", err1, err2, err1 == nil && err2 == nil && os.SameFile(lock1, lock2))
	}
	if host, err := os.Stat("/run/xtables.lock"); err == nil && (os.SameFile(host, lock1) || os.SameFile(host, lock2)) {
		t.Error("a node's /run/xtables.lock is this machine's")
	}

	// A pod network namespace lives in its node's view, and goes with down.
	probe := probePod(ns, "p", "node1")
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{}))
	running := waitRunning(t, client, ns, 1)["p"]
	podNS, err := os.Stat(podNetns(t, c, running))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(netns.Path(c.PodNetns(string(running.UID)))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the pod's network namespace is named in this machine's /run/netns (%v)", err)
	}
	if err := local.Down(ctx, name, c.StateDir); err != nil {
		t.Fatal(err)
	}
	if left, _ := netns.List("npc-" + name + "-"); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if mounts, err := os.ReadFile("/proc/thread-self/mountinfo"); err != nil || strings.Contains(string(mounts), c.StateDir) {
		t.Errorf("mounts left under %s (%v):\n%s", c.StateDir, err, mounts)
	}
	if users := netnsUsers(t, podNS); len(users) > 0 {
		t.Errorf("processes still in the pod's network namespace: %v", users)
	}
}

// netnsUsers returns the processes in the network namespace whose nsfs file
// is ns.
func netnsUsers(t *testing.T, ns os.FileInfo) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, p := range procs {
		if info, err := os.Stat(p); err == nil && os.SameFile(info, ns) {
			users = append(users, p)
		}
	}
	return users
}
