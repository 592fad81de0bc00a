// Package nodeexec lets libcni run CNI plugins inside a node's network
// namespace, the way a container runtime on that node would. The local
// cluster and the plugin's integration tests use it: their nodes are network
// namespaces, and the runtime that drives the plugin runs outside them.
package nodeexec

import (
	"context"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/netpolcheck/netpolcheck/internal/netns"
)

// Exec is an invoke.Exec (pass it to libcni.NewCNIConfigWithCacheDir) that
// starts every plugin process in one network namespace.
type Exec struct {
	version.PluginDecoder
	netns string
	raw   invoke.RawExec
}

// New returns an Exec that runs plugins in the network namespace at
// netnsPath, such as /run/netns/npc-node1.
func New(netnsPath string) *Exec {
	return &Exec{netns: netnsPath}
}

// ExecPlugin runs the plugin from an OS thread switched into the node's
// namespace; the child process inherits that namespace. Plugin errors come
// back unwrapped, as *types.Error, like with libcni's default Exec.
func (e *Exec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var out []byte
	err := netns.Do(e.netns, func() error {
		var err error
		out, err = e.raw.ExecPlugin(ctx, pluginPath, stdinData, environ)
		return err
	})
	return out, err
}

// FindInPath finds the plugin binary in the CNI path, as libcni does.
func (e *Exec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}
