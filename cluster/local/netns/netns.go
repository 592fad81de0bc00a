// Package netns is the local cluster's view of its network namespaces: each
// has a name and is a bind mount under /run/netns, like `ip netns add` makes,
// so the usual tools (ip -n NAME, ip netns exec) see them. It maps names to
// those paths for the module's network-namespace package (internal/netns),
// lists the cluster's namespaces by name prefix and stops the processes in
// one.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/internal/netns"
)

// Dir is where named network namespaces are mounted.
const Dir = netns.Dir

// Path returns the bind-mount path of a named namespace.
func Path(name string) string { return netns.Path(name) }

// Create makes the named namespace with its loopback up, or fails if it
// exists. The calling goroutine's namespace is unchanged.
func Create(name string) error { return netns.Create(Path(name)) }

// Delete unmounts and removes a named namespace; a missing one is not an
// error. The namespace (and its links) disappears once no process uses it.
func Delete(name string) error { return netns.Delete(Path(name)) }

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
func Do(name string, fn func() error) error { return netns.Do(Path(name), fn) }

// Start starts cmd inside the named namespace: the child is forked from a
// thread switched into it, so it inherits the namespace.
func Start(name string, cmd *exec.Cmd) error { return netns.Start(Path(name), cmd) }

// Handle returns a netlink handle operating inside the named namespace.
func Handle(name string) (*netlink.Handle, error) { return netns.Handle(Path(name)) }

// Sysctl writes a sysctl (such as net.ipv4.ip_forward) inside the namespace.
func Sysctl(name, key, value string) error { return netns.Sysctl(Path(name), key, value) }

// Pids returns the processes whose network namespace is the named one.
func Pids(name string) ([]int, error) { return netns.Pids(Path(name)) }

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
