// Package netns creates, enters and deletes the named network namespaces of
// the local cluster, and starts processes inside them. Every namespace it
// creates is a bind mount under /run/netns, like `ip netns add` makes, so the
// usual tools (ip -n NAME, ip netns exec) see them.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// Dir is where named network namespaces are mounted.
const Dir = "/run/netns"

// Path returns the bind-mount path of a named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Create makes the named namespace with its loopback up, or fails if it
// exists. The calling goroutine's namespace is unchanged.
func Create(name string) error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", Dir, err)
	}
	if _, err := os.Stat(Path(name)); err == nil {
		return fmt.Errorf("network namespace %s already exists", name)
	}
	runtime.LockOSThread()
	origin, err := vnetns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading the current network namespace: %w", err)
	}
	defer origin.Close()
	created, err := vnetns.NewNamed(name)
	if created.IsOpen() {
		created.Close()
	}
	if restoreErr := vnetns.Set(origin); restoreErr != nil {
		// The thread stays locked: the runtime discards it with the goroutine.
		return fmt.Errorf("returning from network namespace %s: %w", name, restoreErr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("creating network namespace %s: %w", name, err)
	}
	return Do(name, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
}

// Delete unmounts and removes a named namespace; a missing one is not an
// error. The namespace (and its links) disappears once no process uses it.
func Delete(name string) error {
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting network namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing network namespace %s: %w", name, err)
	}
	return nil
}

// List returns the named namespaces whose names start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Do runs fn on a thread inside the named namespace.
func Do(name string, fn func() error) error {
	return kubeclient.InNetns(Path(name), fn)
}

// Start starts cmd inside the named namespace: the child is forked from a
// thread switched into it, so it inherits the namespace.
func Start(name string, cmd *exec.Cmd) error {
	return Do(name, cmd.Start)
}

// Handle returns a netlink handle operating inside the named namespace.
func Handle(name string) (*netlink.Handle, error) {
	ns, err := vnetns.GetFromPath(Path(name))
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in network namespace %s: %w", name, err)
	}
	return h, nil
}

// Sysctl writes a sysctl (such as net.ipv4.ip_forward) inside the namespace.
func Sysctl(name, key, value string) error {
	return Do(name, func() error {
		path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("setting %s in %s: %w", key, name, err)
		}
		return nil
	})
}

// Pids returns the processes whose network namespace is the named one.
func Pids(name string) ([]int, error) {
	var st unix.Stat_t
	if err := unix.Stat(Path(name), &st); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net")); err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// KillProcesses stops every process inside the named namespace: SIGTERM,
// then SIGKILL for those still there after grace.
func KillProcesses(name string, grace time.Duration) error {
	pids, err := Pids(name)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if pids, err = Pids(name); err != nil || len(pids) == 0 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	return nil
}
