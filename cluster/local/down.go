package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/nodefs"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	nspath "github.com/netpolcheck/netpolcheck/internal/netns"
)

// Down removes the local cluster name recorded in stateDir (or, with no
// record, whatever a crashed run of that name left): it stops the node
// processes (their agents detach the pods), kills every process still inside
// one of the cluster's namespaces (pods' in each node's filesystem view),
// deletes the namespaces with their links and nftables tables, unpins the
// nodes' views, stops the control plane and removes the state.
func Down(ctx context.Context, name, stateDir string) error {
	if name == "" {
		name = DefaultName
	}
	if stateDir == "" {
		stateDir = filepath.Join(DefaultStateRoot, name)
	}
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		// No state: still remove namespaces a crashed run may have left.
		return removeNetwork(prefixFor(name))
	}
	unlock, err := lock(ctx, stateDir)
	if err != nil {
		return err
	}
	err = down(ctx, name, stateDir)
	unlock()
	if err != nil {
		return err
	}
	// Nothing is left but the lock: remove it and the (then empty) state dir.
	if err := os.Remove(filepath.Join(stateDir, lockFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the state lock: %w", err)
	}
	if err := os.Remove(stateDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the state dir: %w", err)
	}
	return nil
}

// down does the work of Down with the state dir locked.
func down(ctx context.Context, name, stateDir string) error {
	var errs []error
	if c, err := Load(stateDir); err == nil {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range c.Processes {
			wg.Go(func() {
				if err := p.Stop(ctx, processStop); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("stopping %s: %w", p.Name, err))
					mu.Unlock()
				}
			})
		}
		for _, e := range c.Externals {
			if e.Process != nil {
				wg.Go(func() { _ = e.Process.Stop(ctx, processStop) })
			}
		}
		wg.Wait()
	}
	errs = append(errs, removeNodeViews(stateDir, prefixFor(name)))
	errs = append(errs, removeNetwork(prefixFor(name)))
	cpDir := filepath.Join(stateDir, controlDir)
	if _, err := os.Stat(cpDir); err == nil {
		errs = append(errs, controlplane.Reap(ctx, cpDir))
	}
	errs = append(errs, nspath.Delete(filepath.Join(stateDir, hostNetns)))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Keep the lock file: the caller holds it.
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return fmt.Errorf("reading the state dir: %w", err)
	}
	for _, e := range entries {
		if e.Name() == lockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
			return fmt.Errorf("removing the state: %w", err)
		}
	}
	return nil
}

// removeNetwork kills every process inside a namespace of the prefix, then
// deletes the namespaces (those of the calling thread's view of /run/netns).
func removeNetwork(prefix string) error {
	names, err := netns.List(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, netns.KillProcesses(name, 2*time.Second))
	}
	errs = append(errs, topology.Delete(prefix))
	return errors.Join(errs...)
}

// removeNodeViews removes the pods' network namespaces of every node's
// filesystem view (they are named under the node's own /run/netns), with
// whatever still runs in them, and unpins the views: each mount namespace
// goes with its last process.
func removeNodeViews(stateDir, prefix string) error {
	dirs, err := filepath.Glob(filepath.Join(stateDir, "nodes", "*"))
	if err != nil {
		return fmt.Errorf("listing the nodes' directories: %w", err)
	}
	var errs []error
	for _, dir := range dirs {
		if nodefs.Pinned(dir) {
			inView := nodefs.Do(filepath.Join(dir, nodefs.NamespaceFile), func() error { return removeNetwork(prefix) })
			if inView != nil {
				errs = append(errs, fmt.Errorf("removing the pods of %s: %w", dir, inView))
			}
		}
		errs = append(errs, nodefs.Remove(dir))
	}
	return errors.Join(errs...)
}

// lock takes the state dir's lock, waiting while another Up or Down holds it.
func lock(ctx context.Context, stateDir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the state lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", stateDir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another netpolcheck local up/down on %s: %w", stateDir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
