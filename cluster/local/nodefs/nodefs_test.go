package nodefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestViewIsTheNodesOwn builds two views and checks that what one writes at
// the real paths lands in its own directory only, that /sys/fs/bpf is a
// fresh bpf filesystem, and that Remove leaves no mount behind.
func TestViewIsTheNodesOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	base := t.TempDir()
	nodes := []string{filepath.Join(base, "node1"), filepath.Join(base, "node2")}
	for _, dir := range nodes {
		if err := Create(dir, []string{base}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Remove(dir) })
		if !Pinned(dir) {
			t.Fatalf("%s: the view is not pinned", dir)
		}
	}
	marker := "netpolcheck-nodefs-test-" + filepath.Base(base)
	for _, dir := range nodes {
		err := Do(filepath.Join(dir, NamespaceFile), func() error {
			for _, own := range OwnDirs() {
				if err := os.WriteFile(filepath.Join(own, marker), []byte(dir), 0o644); err != nil {
					return err
				}
			}
			var st unix.Statfs_t
			if err := unix.Statfs(BPFDir, &st); err != nil {
				return err
			}
			if st.Type != unix.BPF_FS_MAGIC {
				t.Errorf("%s: %s is not a bpf filesystem (type %#x)", dir, BPFDir, st.Type)
			}
			if _, err := os.Stat(filepath.Join(base, "node1", NamespaceFile)); err != nil {
				t.Errorf("%s: the kept path %s is not visible inside: %v", dir, base, err)
			}
			return os.Mkdir(filepath.Join(BPFDir, marker), 0o700)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range nodes {
		for _, own := range OwnDirs() {
			got, err := os.ReadFile(filepath.Join(dir, RootDir, own, marker))
			if err != nil || string(got) != dir {
				t.Errorf("%s%s/%s = %q, %v; want the node's own file", dir, own, marker, got, err)
			}
			if _, err := os.Stat(filepath.Join(own, marker)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("this machine's %s/%s exists (%v): the view wrote through", own, marker, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(BPFDir, marker)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("this machine's %s has the view's directory (%v)", BPFDir, err)
	}
	for _, dir := range nodes {
		if err := Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	mounts, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), base) {
		t.Errorf("mounts left under %s after Remove:\n%s", base, mounts)
	}
}

// TestViewKeepsAStateDirUnderRun builds views whose state directory lies
// under /run, as the default /run/netpolcheck/NAME does: inside, /run is the
// node's own, yet the state directory (every node's directory, the other
// node's pin included) stays visible at its path.
func TestViewKeepsAStateDirUnderRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	state, err := os.MkdirTemp("/run", "netpolcheck-nodefs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	nodes := []string{filepath.Join(state, "nodes", "node1"), filepath.Join(state, "nodes", "node2")}
	for _, dir := range nodes {
		if err := Create(dir, []string{state}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Remove(dir) })
	}
	marker := filepath.Base(state) + "-marker"
	for _, dir := range nodes {
		err := Do(filepath.Join(dir, NamespaceFile), func() error {
			for _, node := range nodes {
				if _, err := os.Stat(filepath.Join(node, RootDir, "run")); err != nil {
					t.Errorf("inside %s: the state directory is not visible: %v", dir, err)
				}
			}
			return os.WriteFile(filepath.Join("/run", marker), []byte(dir), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, RootDir, "run", marker)); err != nil || string(got) != dir {
			t.Errorf("%s's /run/%s = %q, %v", dir, marker, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/run", marker)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("this machine's /run has %s (%v)", marker, err)
	}
	for _, dir := range nodes {
		if err := Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	if mounts, _ := os.ReadFile("/proc/thread-self/mountinfo"); strings.Contains(string(mounts), state) {
		t.Errorf("mounts left under %s after Remove", state)
	}
}
