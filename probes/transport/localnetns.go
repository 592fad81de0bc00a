// Package transport carries probe batches to the source endpoint and runs
// them there with `netpolcheck-probe batch`: LocalNetns starts the agent in
// a network namespace of this machine, KubeExec runs it in the source pod
// through the API server's exec subresource. Both implement matrix.Transport
// and share the batch protocol code (package batch).
package transport

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/batch"
)

// killGrace is how long a batch agent may take to exit after its context
// ended (SIGTERM) before it is killed.
const killGrace = 2 * time.Second

// LocalNetns runs each batch as a `netpolcheck-probe batch` process inside
// the source endpoint's network namespace on this machine.
type LocalNetns struct {
	// Binary is the path of the netpolcheck-probe executable.
	Binary string
	// NetnsPath maps an endpoint to its network namespace, for example
	// /run/netns/npc-pod-1234 or /proc/PID/ns/net.
	NetnsPath func(matrix.Endpoint) (string, error)
	// Workers caps the probes a batch runs at once (0: the agent's default).
	Workers int
	// Args are extra flags for `batch` (for example "--sctp=userspace").
	Args []string
	// SourceArgs, when set, returns more flags for a batch from one source,
	// such as a pod's --dns-server and --dns-search.
	SourceArgs func(matrix.Endpoint) []string
}

var _ matrix.Transport = (*LocalNetns)(nil)

// RunBatch implements matrix.Transport.
func (t *LocalNetns) RunBatch(ctx context.Context, source matrix.Endpoint, probes []matrix.Probe) ([]matrix.Result, error) {
	path, err := t.NetnsPath(source)
	if err != nil {
		return nil, fmt.Errorf("network namespace of %s: %w", source.Name, err)
	}
	args := append([]string{"batch"}, t.Args...)
	if t.SourceArgs != nil {
		args = append(args, t.SourceArgs(source)...)
	}
	if t.Workers > 0 {
		args = append(args, "--workers", strconv.Itoa(t.Workers))
	}
	results, err := batch.Exchange(ctx, probes, func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
		cmd := exec.CommandContext(ctx, t.Binary, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		cmd.Env = []string{} // the agent needs no environment
		cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
		cmd.WaitDelay = killGrace
		if err := netns.Start(path, cmd); err != nil {
			return err
		}
		return cmd.Wait()
	})
	if err != nil {
		return nil, fmt.Errorf("probing from %s: %w", source.Name, err)
	}
	return results, nil
}
