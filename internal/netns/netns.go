// Package netns enters, creates and deletes Linux network namespaces. Every
// namespace is named by a path: a bind mount such as /run/netns/NAME (what
// `ip netns add` makes, see Path) or a process's /proc/PID/ns/net.
//
// Switching namespaces is per OS thread, so each function that works inside
// a namespace locks the calling goroutine to its thread, switches the thread
// in and back out again. When a thread cannot be switched back it is left
// locked: the Go runtime then ends it with its goroutine instead of running
// other goroutines in the wrong namespace. Nothing but the network namespace
// changes; no mount namespace is made.
//
// The package imports nothing of the module, so that every package of it may
// use it. Everything but Path needs root (CAP_SYS_ADMIN).
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

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are mounted, as by `ip netns add`.
const Dir = "/run/netns"

// Current is the path of the calling thread's network namespace.
const Current = "/proc/thread-self/ns/net"

// Path returns the bind-mount path of the named namespace, Dir/name.
func Path(name string) string { return filepath.Join(Dir, name) }

// Do runs fn on an OS thread switched into the namespace at path and
// switches the thread back afterwards. Sockets fn creates belong to the
// namespace and stay there; processes it forks start there.
func Do(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer target.Close()
	return onThreadIn(path, func() error { return setns(target) }, fn)
}

// Start starts cmd inside the namespace at path: the child is forked from a
// thread switched into it, so it starts there. cmd runs outside any other
// namespace change (no `ip netns exec`), so any /proc/PID/ns/net works.
func Start(path string, cmd *exec.Cmd) error {
	err := Do(path, cmd.Start)
	if err != nil && cmd.Process == nil {
		return fmt.Errorf("starting %s in %s: %w", cmd.Path, path, err)
	}
	return err
}

// Create makes a new namespace, bind-mounted at path, with its loopback up.
// It fails if path exists; its directory is created when missing.
func Create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("network namespace %s already exists", path)
	}
	err := onThreadIn(path, func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unsharing: %w", err)
		}
		return nil
	}, func() error {
		if err := Bind(path); err != nil {
			return err
		}
		if err := linkUp("lo"); err != nil {
			return errors.Join(err, Delete(path))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating network namespace %s: %w", path, err)
	}
	return nil
}

// Bind makes path, a new file, a bind mount of the calling thread's network
// namespace, which keeps that namespace alive until Delete. Called from an
// unlocked goroutine it binds the process's own namespace.
func Bind(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	f.Close()
	if err := unix.Mount(Current, path, "", unix.MS_BIND, ""); err != nil {
		return errors.Join(fmt.Errorf("bind-mounting a network namespace at %s: %w", path, err), os.Remove(path))
	}
	return nil
}

// Delete unmounts and removes the bind mount at path; a missing one is not
// an error. The namespace (and its links) disappears once no process and no
// socket uses it any more.
func Delete(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing network namespace %s: %w", path, err)
	}
	return nil
}

// Handle returns a netlink handle working inside the namespace at path,
// from any thread. The caller closes it (Handle.Close).
func Handle(path string) (*netlink.Handle, error) {
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in network namespace %s: %w", path, err)
	}
	return h, nil
}

// Sysctl writes a per-namespace sysctl such as net.ipv4.ip_forward inside
// the namespace at path.
func Sysctl(path, key, value string) error {
	return Do(path, func() error {
		file := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			return fmt.Errorf("setting %s in %s: %w", key, path, err)
		}
		return nil
	})
}

// Pids returns the processes whose network namespace is the one at path.
func Pids(path string) ([]int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
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

// onThreadIn locks the calling goroutine to its thread, moves the thread
// into a namespace with enter (for a namespace called path in errors), runs
// fn and moves the thread back where it was.
func onThreadIn(path string, enter func() error, fn func() error) error {
	runtime.LockOSThread()
	origin, err := os.Open(Current)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening the current network namespace: %w", err)
	}
	defer origin.Close()
	if err := enter(); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	fnErr := fn()
	if err := setns(origin); err != nil {
		// Stay locked: the thread ends with this goroutine.
		return errors.Join(fmt.Errorf("leaving network namespace %s: %w", path, err), fnErr)
	}
	runtime.UnlockOSThread()
	return fnErr
}

func setns(ns *os.File) error { return unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET) }

func linkUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}
