package local

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

// AddExternal creates an external host outside the cluster's ranges,
// reachable from every node, running a probe server that answers as name on
// the given ports ("80/TCP"). Adding a host that exists with the same
// addresses returns it; it is safe from several processes at once.
func (c *Cluster) AddExternal(ctx context.Context, name string, ips []netip.Addr, ports []string) (*ExternalHost, error) {
	unlock, err := lock(ctx, c.StateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	latest, err := Load(c.StateDir)
	if err != nil {
		return nil, err
	}
	for i := range latest.Externals {
		e := &latest.Externals[i]
		if e.Name != name {
			continue
		}
		if !slices.Equal(e.IPs, ips) || !slices.Equal(e.Ports, ports) {
			return nil, fmt.Errorf("external host %s exists with addresses %v and ports %v", name, e.IPs, e.Ports)
		}
		*c = *latest
		return e, nil
	}
	network := &topology.Network{Prefix: c.Prefix, Nodes: latest.Nodes}
	for _, e := range latest.Externals {
		network.Externals = append(network.Externals, e.External)
	}
	ext, err := network.AddExternal(name, ips)
	if err != nil {
		return nil, err
	}
	host := ExternalHost{External: ext, Ports: ports}
	if len(ports) > 0 {
		args := []string{"serve", "--identity", name, "--container", name}
		for _, p := range ports {
			args = append(args, "--port", p)
		}
		var p detached.Process
		err := netns.Do(ext.Netns, func() (err error) {
			p, err = detached.Start(detached.Spec{
				Name: "external/" + name, Path: filepath.Join(c.BinDir, ProbeBinary), Args: args,
				LogFile: filepath.Join(c.StateDir, "externals-"+name+".log"),
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("starting the probe server of external host %s: %w", name, err)
		}
		host.Process = &p
		if err := waitForLine(ctx, p.LogFile, "ready", serverReadyTimeout); err != nil {
			return nil, fmt.Errorf("external host %s: %w", name, err)
		}
	}
	latest.Externals = append(latest.Externals, host)
	if err := latest.save(); err != nil {
		return nil, err
	}
	*c = *latest
	return &c.Externals[len(c.Externals)-1], nil
}

// serverReadyTimeout bounds the wait for a probe server to listen.
const serverReadyTimeout = 10 * time.Second

// waitForLine waits until a log file holds the given line.
func waitForLine(ctx context.Context, path, line string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if f, err := os.Open(path); err == nil {
			scanner := bufio.NewScanner(f)
			for scanner.Scan() {
				if scanner.Text() == line {
					f.Close()
					return nil
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in %s after %s", line, path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
