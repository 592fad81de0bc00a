// Package nodefs gives each node of the local cluster its own filesystem
// view, as a kind node has: a mount namespace in which the directories where
// a machine keeps its state (OwnDirs) are bind mounts of the node's own
// directories under <nodeDir>/root, and /sys/fs/bpf is a fresh bpf
// filesystem. Mounts made inside the view never reach this machine's
// namespace (the view is a slave of it), while this machine's mounts still
// propagate in. The namespace is pinned by a bind mount at <nodeDir>/mnt.ns,
// so `nsenter --mount=<nodeDir>/mnt.ns` enters it.
package nodefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// OwnDirs are the directories every node has of its own inside its view
// (/var/run is a symlink to /run on Debian, so /var/run/netns is the node's
// too). /sys/fs/bpf is a fresh bpf filesystem besides.
func OwnDirs() []string {
	return []string{"/etc/cni/net.d", "/opt/cni/bin", "/run", "/var/lib", "/var/log/pods"}
}

// BPFDir is where the view mounts its own bpf filesystem.
const BPFDir = "/sys/fs/bpf"

// Names inside a node's directory.
const (
	// RootDir holds the node's own copies of OwnDirs (<nodeDir>/root/run is
	// the node's /run).
	RootDir = "root"
	// NamespaceFile pins the node's mount namespace.
	NamespaceFile = "mnt.ns"
)

// Bind is one bind mount of the view, made in order.
type Bind struct {
	Source string
	Target string
	// Recursive binds the source's submounts too.
	Recursive bool
}

// Plan returns the bind mounts that make a node's view: first every kept
// path that lies under one of OwnDirs is bound onto its place in the node's
// own copy of that directory, so it stays visible at its own path (the
// cluster's state directory under /run, say); then each node directory
// replaces the real one. A kept path that is or contains one of OwnDirs
// cannot stay visible and is an error.
func Plan(nodeDir string, keep []string) ([]Bind, error) {
	if !filepath.IsAbs(nodeDir) {
		return nil, fmt.Errorf("node directory %q is not absolute", nodeDir)
	}
	var binds []Bind
	kept := map[string]bool{}
	for _, own := range OwnDirs() {
		for _, k := range cleanKeep(keep) {
			if within(own, k) {
				return nil, fmt.Errorf("%s must stay visible inside the node but is (or holds) %s, which the node has of its own", k, own)
			}
			if within(k, own) && !kept[k] {
				kept[k] = true
				binds = append(binds, Bind{Source: k, Target: filepath.Join(nodeDir, RootDir, k), Recursive: true})
			}
		}
	}
	for _, own := range OwnDirs() {
		binds = append(binds, Bind{Source: filepath.Join(nodeDir, RootDir, own), Target: own, Recursive: true})
	}
	return binds, nil
}

// cleanKeep returns the kept paths cleaned, without those inside another
// kept path (binding the outer one keeps them).
func cleanKeep(keep []string) []string {
	var out []string
	for _, k := range keep {
		k = filepath.Clean(k)
		inside := false
		for _, other := range keep {
			other = filepath.Clean(other)
			if other != k && within(k, other) {
				inside = true
			}
		}
		if !inside && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// Create builds the node's view for nodeDir, keeping the paths keep visible
// at their own paths inside, and pins it at <nodeDir>/mnt.ns. The real
// directories of OwnDirs that this machine lacks (/etc/cni/net.d,
// /opt/cni/bin) are created empty as mount points.
func Create(nodeDir string, keep []string) (err error) {
	binds, err := Plan(nodeDir, keep)
	if err != nil {
		return err
	}
	if err := checkVarRun(); err != nil {
		return err
	}
	for _, b := range binds {
		if err := os.MkdirAll(b.Target, 0o755); err != nil {
			return fmt.Errorf("creating the mount point %s: %w", b.Target, err)
		}
		if err := os.MkdirAll(b.Source, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", b.Source, err)
		}
	}
	// unshare --mount=FILE's rule: the pin's mount must not propagate into
	// the namespace it pins, so the node directory is a private mount.
	if err := unix.Mount(nodeDir, nodeDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s onto itself: %w", nodeDir, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, Remove(nodeDir))
		}
	}()
	if err := unix.Mount("", nodeDir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making %s a private mount: %w", nodeDir, err)
	}
	pin := filepath.Join(nodeDir, NamespaceFile)
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		return fmt.Errorf("creating %s: %w", pin, err)
	}
	built := make(chan builtView)
	release := make(chan struct{})
	defer close(release)
	go onDiscardedThread(func() { buildView(binds, built, release) })
	view := <-built
	if view.err != nil {
		return view.err
	}
	source := fmt.Sprintf("/proc/%d/task/%d/ns/mnt", os.Getpid(), view.tid)
	if err := unix.Mount(source, pin, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pinning the mount namespace of %s at %s: %w", nodeDir, pin, err)
	}
	return nil
}

type builtView struct {
	tid int
	err error
}

// buildView makes the view on the calling thread (one onDiscardedThread
// gives) and keeps the thread in it until release is closed, so the
// namespace can be pinned from outside.
func buildView(binds []Bind, built chan<- builtView, release <-chan struct{}) {
	built <- builtView{tid: unix.Gettid(), err: enterNewView(binds)}
	<-release
}

// onDiscardedThread runs fn on a locked OS thread that the runtime discards
// when fn returns, so a thread fn moves into another namespace never runs
// anything else. The main thread cannot be discarded (the runtime parks it
// for good, in whatever namespace it is): a goroutine that lands on it
// keeps it locked, so fn runs on another thread, and then unlocks it
// unchanged.
func onDiscardedThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			onDiscardedThread(fn)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	fn()
}

func enterNewView(binds []Bind) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("creating a mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making the new mount namespace a slave of this machine's: %w", err)
	}
	for _, b := range binds {
		flags := uintptr(unix.MS_BIND)
		if b.Recursive {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(b.Source, b.Target, "", flags, ""); err != nil {
			return fmt.Errorf("binding %s onto %s: %w", b.Source, b.Target, err)
		}
	}
	if err := unix.Mount("bpf", BPFDir, "bpf", 0, ""); err != nil {
		return fmt.Errorf("mounting a bpf filesystem at %s: %w", BPFDir, err)
	}
	return nil
}

// checkVarRun makes sure /var/run is /run, so that the view's /run is its
// /var/run too.
func checkVarRun() error {
	target, err := filepath.EvalSymlinks("/var/run")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolving /var/run: %w", err)
	}
	if target != "/run" {
		return fmt.Errorf("/var/run is %s, not a link to /run: a node's view would share it with this machine", target)
	}
	return nil
}

// Pinned reports whether nodeDir's view is pinned (its mnt.ns is a mount of
// a mount namespace).
func Pinned(nodeDir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(filepath.Join(nodeDir, NamespaceFile), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// Remove unpins nodeDir's view and undoes the private mount of nodeDir; the
// namespace disappears with the last process inside it. Nothing pinned is
// not an error.
func Remove(nodeDir string) error {
	pin := filepath.Join(nodeDir, NamespaceFile)
	var errs []error
	for _, path := range []string{pin, nodeDir} {
		for isMountPoint(path) {
			if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", path, err))
				break
			}
		}
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing %s: %w", pin, err))
	}
	return errors.Join(errs...)
}

// isMountPoint reports whether a mount of this machine's namespace is at
// path.
func isMountPoint(path string) bool {
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && unescapeMountPath(fields[4]) == path {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes mountinfo's octal escapes of space, tab,
// newline and backslash.
func unescapeMountPath(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// Do runs fn on a thread inside the view pinned at mntNS (a node's
// <nodeDir>/mnt.ns): paths fn opens resolve in the node's filesystem. The
// thread is discarded afterwards.
func Do(mntNS string, fn func() error) error {
	ns, err := os.Open(mntNS)
	if err != nil {
		return fmt.Errorf("opening the mount namespace %s: %w", mntNS, err)
	}
	defer ns.Close()
	done := make(chan error)
	go onDiscardedThread(func() {
		done <- func() error {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unsharing the filesystem attributes: %w", err)
			}
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("entering the mount namespace %s: %w", mntNS, err)
			}
			return fn()
		}()
	})
	return <-done
}

// Start runs start (such as exec.Cmd.Start) on a thread inside the view
// pinned at mntNS and inside the network namespace at netnsPath (a path of
// this machine's view), so the process it starts runs in both.
func Start(mntNS, netnsPath string, start func() error) error {
	net, err := os.Open(netnsPath)
	if err != nil {
		return fmt.Errorf("opening the network namespace %s: %w", netnsPath, err)
	}
	defer net.Close()
	return Do(mntNS, func() error {
		if err := unix.Setns(int(net.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering the network namespace %s: %w", netnsPath, err)
		}
		return start()
	})
}
