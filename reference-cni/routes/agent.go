// Package routes is the reference CNI's node route agent (host-gw style).
// For every other node it routes that node's pod CIDRs via the node's
// InternalIP in the current (node) network namespace, and keeps the routes
// in sync with the Node objects. It marks its routes with RouteProtocol and
// never touches a route without that mark.
//
// It can also write the node's conflist from its own Node's pod CIDRs, which
// is how each kind node gets its per-node range.
package routes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
)

// RouteProtocol is the rtnetlink protocol number of the agent's routes
// (`ip route` shows "proto 147"); it is unassigned in iproute2's rt_protos.
const RouteProtocol netlink.RouteProtocol = 147

// DefaultResyncPeriod is how often the agent re-checks its routes even when
// no Node changed, repairing routes deleted behind its back.
const DefaultResyncPeriod = 30 * time.Second

// maxRetryDelay caps the back-off after a failed sync.
const maxRetryDelay = 30 * time.Second

// Config configures an Agent.
type Config struct {
	// NodeName is the name of the Node this agent runs on.
	NodeName string
	// ConflistDir, when set, is where the node's conflist is written
	// (/etc/cni/net.d on a kind node).
	ConflistDir string
	// DataDir is the plugin's IPAM directory written into the conflist;
	// empty keeps the plugin default.
	DataDir string
	// MTU written into the conflist; zero keeps the kernel default.
	MTU int
	// ResyncPeriod is DefaultResyncPeriod when zero.
	ResyncPeriod time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Agent keeps a node's routes to other nodes' pods in sync with the Nodes.
type Agent struct {
	client kubernetes.Interface
	nl     *netlink.Handle
	cfg    Config
	log    *slog.Logger
}

// New returns an agent that watches Nodes through client and programs
// routes through nl, a netlink handle in the node's namespace.
func New(client kubernetes.Interface, nl *netlink.Handle, cfg Config) (*Agent, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("route agent: node name is required")
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = DefaultResyncPeriod
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Agent{client: client, nl: nl, cfg: cfg, log: logger.With("node", cfg.NodeName)}, nil
}

// Run watches Nodes and syncs on every change and every resync period,
// retrying failures with back-off, until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default: // a sync is already pending
		}
	}
	_, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	})
	if err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return fmt.Errorf("waiting for the node cache: %w", ctx.Err())
	}

	resync := time.NewTicker(a.cfg.ResyncPeriod)
	defer resync.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	delay := time.Second
	for {
		list, err := nodes.Lister().List(labels.Everything())
		if err == nil {
			err = a.Sync(list)
		}
		if err != nil {
			a.log.Error("sync failed, retrying", "in", delay, "err", err)
			retry.Reset(delay)
			delay = min(2*delay, maxRetryDelay)
		} else {
			delay = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-resync.C:
		case <-retry.C:
		}
	}
}

// Sync brings the node's routes, and its conflist when configured, in line
// with nodes. It returns every failure joined; what could be done is done.
func (a *Agent) Sync(nodes []*corev1.Node) error {
	want, skipped := DesiredRoutes(a.cfg.NodeName, nodes)
	for _, s := range skipped {
		a.log.Debug("no route for node", "peer", s.Node, "reason", s.Reason)
	}
	return errors.Join(a.syncRoutes(want), a.writeConflist(nodes))
}

func (a *Agent) syncRoutes(want []Route) error {
	owned, err := a.ownedRoutes()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range want {
		have, exists := owned[r.Dst]
		delete(owned, r.Dst)
		if exists && have.Gw.Equal(net.IP(r.Via.AsSlice())) {
			continue
		}
		route := &netlink.Route{Dst: prefixToIPNet(r.Dst), Gw: net.IP(r.Via.AsSlice()), Protocol: RouteProtocol}
		if exists {
			err = a.nl.RouteReplace(route)
		} else {
			err = a.nl.RouteAdd(route)
		}
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("a route to %s that the agent does not own is in the way", r.Dst)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("routing %s: %w", r, err))
			continue
		}
		a.log.Info("route set", "dst", r.Dst, "via", r.Via, "peer", r.Node)
	}
	for dst, stale := range owned {
		if err := a.nl.RouteDel(&stale); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing stale route to %s: %w", dst, err))
			continue
		}
		a.log.Info("route removed", "dst", dst, "via", stale.Gw)
	}
	return errors.Join(errs...)
}

// ownedRoutes lists the main-table routes that carry RouteProtocol.
func (a *Agent) ownedRoutes() (map[netip.Prefix]netlink.Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	var list []netlink.Route
	var err error
	for range 5 { // a dump is retried when the table changed under it
		list, err = a.nl.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	owned := make(map[netip.Prefix]netlink.Route, len(list))
	for _, r := range list {
		if r.Dst == nil {
			continue // the agent never installs default routes
		}
		addr, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		owned[netip.PrefixFrom(addr.Unmap(), ones)] = r
	}
	return owned, nil
}

// writeConflist writes the plugin's conflist for this node's pod CIDRs,
// atomically, and only when its content changes.
func (a *Agent) writeConflist(nodes []*corev1.Node) error {
	if a.cfg.ConflistDir == "" {
		return nil
	}
	var self *corev1.Node
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName {
			self = n
		}
	}
	if self == nil {
		return fmt.Errorf("writing conflist: node %s not found", a.cfg.NodeName)
	}
	cidrs, err := PodCIDRs(self)
	if err != nil {
		return fmt.Errorf("writing conflist: %w", err)
	}
	if len(cidrs) == 0 {
		return fmt.Errorf("writing conflist: node %s has no pod CIDR yet", self.Name)
	}
	content, err := plugin.Conflist(cidrs, a.cfg.DataDir, a.cfg.MTU)
	if err != nil {
		return fmt.Errorf("writing conflist: %w", err)
	}
	path := filepath.Join(a.cfg.ConflistDir, plugin.ConflistFileName)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	if err := writeFileAtomically(path, content); err != nil {
		return fmt.Errorf("writing conflist: %w", err)
	}
	a.log.Info("conflist written", "path", path, "ranges", cidrs)
	return nil
}

// writeFileAtomically writes through a temporary file whose name the
// runtime ignores (no .conf/.conflist/.json suffix) and renames it, so a
// runtime never loads a half-written conflist.
func writeFileAtomically(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".netpolcheck-*.tmp")
	if err != nil {
		return err
	}
	_, writeErr := tmp.Write(content)
	if err := errors.Join(writeErr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
