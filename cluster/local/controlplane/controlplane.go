// Package controlplane runs a real Kubernetes control plane on this machine
// without containers: Debian's etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler, each a detached process listening on 127.0.0.1 only.
//
// The processes outlive the command that starts them. Everything a later
// command needs to stop them (their PIDs and start times, the kubeconfig) is
// recorded in a state directory, together with the certificates, the etcd
// data and one log file per component.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/pki"
)

// Defaults for the optional Config fields.
const (
	DefaultEtcdPath     = "/usr/bin/etcd"
	DefaultServiceCIDR  = "10.96.0.0/16"
	DefaultReadyTimeout = 90 * time.Second
)

// stopGrace is how long a component gets to exit after SIGTERM before it is
// killed.
const stopGrace = 10 * time.Second

// Config describes the control plane to start.
type Config struct {
	// StateDir holds the state, certificates, kubeconfigs, etcd data and
	// logs. Required. Only one control plane runs per state dir.
	StateDir string
	// Binaries are the Kubernetes binaries, usually from EnsureBinaries.
	Binaries Binaries
	// EtcdPath is the etcd binary; defaults to DefaultEtcdPath.
	EtcdPath string
	// ServiceCIDR is the ClusterIP range; defaults to DefaultServiceCIDR.
	ServiceCIDR string
	// Controllers are the kube-controller-manager controllers to run;
	// defaults to DefaultControllers().
	Controllers []string
	// ReadyTimeout bounds the wait until the control plane is ready;
	// defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// EgressSocket, when set, is the Unix socket of the proxy through which
	// the API server opens every connection to the cluster (its "cluster"
	// egress selector, HTTP CONNECT): to the kubelets, and for pod and
	// service proxying.
	EgressSocket string
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	stateDir   string
	kubeconfig string
	proxyConf  string
	restConfig *rest.Config
	ca         *pki.CA
}

// Kubeconfig returns the path of the admin kubeconfig (group system:masters).
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// KubeProxyKubeconfig returns the path of a kubeconfig for kube-proxy (user
// system:kube-proxy), with the API server's loopback address.
func (cp *ControlPlane) KubeProxyKubeconfig() string { return cp.proxyConf }

// RESTConfig returns a copy of the admin client configuration.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// Stop stops every component and removes the state; see Reap.
func (cp *ControlPlane) Stop(ctx context.Context) error { return Reap(ctx, cp.stateDir) }

// Start starts etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler and waits until the API server is ready and the default
// namespace and its default service account exist. The processes keep
// running after the caller exits; stop them with Stop, or with Reap from
// another process. A stale state left by a crashed run is cleaned up first;
// a control plane still running in the same state dir is an error. When Start
// fails, it stops what it started and keeps only the logs in StateDir/logs,
// until the next Start or Reap.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	cfg, serviceIP, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("resolving state dir: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(stateDir, lockName), nil)
	if err != nil {
		return nil, fmt.Errorf("locking state dir %s: %w", stateDir, err)
	}
	defer unlock()

	previous, err := readState(stateDir)
	if err != nil {
		return nil, err
	}
	if previous != nil {
		if p, alive := previous.firstAlive(); alive {
			return nil, fmt.Errorf("a local cluster is already running (pid %d, kubeconfig %s); run `netpolcheck local down` first", p.PID, previous.Kubeconfig)
		}
	}
	// Nothing runs: whatever is left belongs to a crashed or interrupted run.
	if err := reapLocked(ctx, stateDir, nil); err != nil {
		return nil, fmt.Errorf("cleaning up a previous run: %w", err)
	}

	cp, err := launch(ctx, stateDir, cfg, serviceIP)
	if err != nil {
		// Stop whatever was started, even if ctx has ended, and keep the
		// logs for a look until the next start.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace)
		defer cancel()
		if reapErr := reapLocked(cleanupCtx, stateDir, []string{logsDir}); reapErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up after the failed start: %w", reapErr))
		}
		return nil, err
	}
	return cp, nil
}

func withDefaults(cfg Config) (Config, netip.Addr, error) {
	if cfg.StateDir == "" {
		return cfg, netip.Addr{}, errors.New("control plane config: StateDir is required")
	}
	b := cfg.Binaries
	if b.APIServer == "" || b.ControllerManager == "" || b.Scheduler == "" {
		return cfg, netip.Addr{}, errors.New("control plane config: Binaries are required (see EnsureBinaries)")
	}
	if cfg.EtcdPath == "" {
		cfg.EtcdPath = DefaultEtcdPath
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = DefaultServiceCIDR
	}
	if cfg.Controllers == nil {
		cfg.Controllers = DefaultControllers()
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	prefix, err := netip.ParsePrefix(cfg.ServiceCIDR)
	if err != nil {
		return cfg, netip.Addr{}, fmt.Errorf("control plane config: service CIDR: %w", err)
	}
	// The API server takes the first address of the range for the
	// kubernetes.default Service.
	return cfg, prefix.Masked().Addr().Next(), nil
}

// launch writes the credentials, starts every component, recording each in
// the state file as soon as it runs, and waits until the cluster is ready.
func launch(ctx context.Context, stateDir string, cfg Config, serviceIP netip.Addr) (*ControlPlane, error) {
	p, err := freePorts()
	if err != nil {
		return nil, err
	}
	server := loopbackURL("https", p.apiServer)
	creds, err := writeCredentials(stateDir, server, serviceIP)
	if err != nil {
		return nil, err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", creds.adminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading admin kubeconfig: %w", err)
	}
	for _, dir := range []string{logsDir, "etcd"} {
		if err := os.MkdirAll(filepath.Join(stateDir, dir), 0o700); err != nil {
			return nil, fmt.Errorf("creating %s dir: %w", dir, err)
		}
	}

	var egressConfig string
	if cfg.EgressSocket != "" {
		if egressConfig, err = writeEgressSelectorConfig(stateDir, cfg.EgressSocket); err != nil {
			return nil, err
		}
	}
	checks, err := newReadinessChecks(restConfig, p)
	if err != nil {
		return nil, err
	}
	// The controller-manager and the scheduler give up when the API server
	// does not answer soon after they start, so they start once it is ready.
	phases := []struct {
		specs  []detached.Spec
		checks []readinessCheck
	}{
		{
			specs: []detached.Spec{
				{Name: "etcd", Path: cfg.EtcdPath, Args: etcdArgs(filepath.Join(stateDir, "etcd"), p)},
				{Name: "kube-apiserver", Path: cfg.Binaries.APIServer, Args: apiServerArgs(creds, p, cfg.ServiceCIDR, egressConfig)},
			},
			checks: checks.apiServer(),
		},
		{
			specs: []detached.Spec{
				{Name: "kube-controller-manager", Path: cfg.Binaries.ControllerManager, Args: controllerManagerArgs(creds, p, cfg.ServiceCIDR, cfg.Controllers)},
				{Name: "kube-scheduler", Path: cfg.Binaries.Scheduler, Args: schedulerArgs(creds, p)},
			},
			checks: checks.controllers(),
		},
	}

	readyCtx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	st := &state{Version: cfg.Binaries.Version, Kubeconfig: creds.adminKubeconfig, Server: server}
	for _, phase := range phases {
		for _, spec := range phase.specs {
			spec.LogFile = logPath(stateDir, spec.Name)
			spec.Dir = stateDir
			proc, err := detached.Start(spec)
			if err != nil {
				return nil, err
			}
			st.Processes = append(st.Processes, proc)
			if err := st.write(stateDir); err != nil {
				return nil, err
			}
		}
		if err := waitFor(readyCtx, st.Processes, phase.checks); err != nil {
			return nil, err
		}
	}
	return &ControlPlane{stateDir: stateDir, kubeconfig: creds.adminKubeconfig, proxyConf: creds.kubeProxyKubeconfig, restConfig: restConfig, ca: creds.ca}, nil
}

// Reap stops the control plane recorded in stateDir, if any, and removes its
// state, certificates, etcd data and logs. It works from any process, cleans
// up after a crashed run, and never signals a process whose PID was reused.
// Components get SIGTERM, then SIGKILL if they have not exited within a
// grace period.
func Reap(ctx context.Context, stateDir string) error {
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(stateDir, lockName), nil)
	if err != nil {
		return fmt.Errorf("locking state dir %s: %w", stateDir, err)
	}
	defer unlock()
	return reapLocked(ctx, stateDir, nil)
}

// reapLocked is Reap for a caller that holds the state dir lock; the entries
// of the state dir named in keep are not removed.
func reapLocked(ctx context.Context, stateDir string, keep []string) error {
	st, err := readState(stateDir)
	if err != nil {
		return err
	}
	if st != nil {
		var errs []error
		for i := len(st.Processes) - 1; i >= 0; i-- {
			if err := st.Processes[i].Stop(ctx, stopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			// Keep the state so that another Reap can try again.
			return fmt.Errorf("stopping the control plane in %s: %w", stateDir, err)
		}
	}
	return clearStateDir(stateDir, keep)
}
