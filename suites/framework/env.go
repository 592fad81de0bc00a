package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// Env is one suite process's connection to the cluster.
type Env struct {
	Config
	Client kubernetes.Interface
	REST   *rest.Config
	// Process numbers this parallel process (1-based); names derive from it.
	Process int
	// Externals are the external hosts every scenario may use, by IP (local
	// cluster only, unless NoExternalHosts: elsewhere there are none and
	// cells involving them are not probed).
	Externals map[netip.Addr]ExternalHost
	local     *local.Cluster
}

// ExternalHost is an external host of the run: its canonical name (its
// probe identity), its address and the ports it serves.
type ExternalHost struct {
	Name  string
	IP    netip.Addr
	Ports []string
}

// Shared is what the first process prepares for all of them.
type Shared struct {
	RunID string `json:"runID"`
	// StartedCluster is set when the first process brought the local cluster
	// up itself, and must take it down at the end.
	StartedCluster bool `json:"startedCluster"`
}

// Prepare runs once per run, on the first process: on the local provider it
// brings the cluster up if none runs, and creates every external host the
// scenarios use.
func Prepare(ctx context.Context, cfg Config, externals []ExternalHost) (Shared, error) {
	shared := Shared{RunID: cfg.RunID}
	if cfg.Provider != ProviderLocal {
		return shared, nil
	}
	c, err := local.Load(cfg.LocalState)
	if err != nil {
		bin, berr := binDir(cfg)
		if berr != nil {
			return shared, berr
		}
		opts := local.Options{Name: cfg.LocalName, StateDir: cfg.LocalState, BinDir: bin, Progress: os.Stderr}
		opts.Kube.SourceDir = filepath.Join(filepath.Dir(bin), "cluster", "local", "kubebin")
		opts.CoreDNS.SourceDir = filepath.Join(filepath.Dir(bin), "cluster", "local", "corednsbin")
		if c, err = local.Up(ctx, opts); err != nil {
			return shared, fmt.Errorf("bringing the local cluster up: %w", err)
		}
		shared.StartedCluster = true
	}
	for _, e := range externals {
		if _, err := c.AddExternal(ctx, e.Name, []netip.Addr{e.IP}, e.Ports); err != nil {
			return shared, err
		}
	}
	return shared, nil
}

// Finish runs once at the end of the run, on the first process.
func Finish(ctx context.Context, cfg Config, shared Shared) error {
	if !shared.StartedCluster {
		return nil
	}
	return local.Down(ctx, cfg.LocalName, cfg.LocalState)
}

// Encode and Decode pass Shared between processes.
func (s Shared) Encode() []byte { data, _ := json.Marshal(s); return data }

// DecodeShared reads what Prepare returned.
func DecodeShared(data []byte) (Shared, error) {
	var s Shared
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("decoding the shared setup: %w", err)
	}
	return s, nil
}

// Connect opens the cluster for one process.
func Connect(cfg Config, shared Shared, process int) (*Env, error) {
	cfg.RunID = shared.RunID
	env := &Env{Config: cfg, Process: process, Externals: map[netip.Addr]ExternalHost{}}
	switch cfg.Provider {
	case ProviderLocal:
		c, err := local.Load(cfg.LocalState)
		if err != nil {
			return nil, err
		}
		env.local = c
		if env.REST, err = c.RESTConfig(); err != nil {
			return nil, err
		}
		for _, e := range c.Externals {
			for _, ip := range e.IPs {
				env.Externals[ip] = ExternalHost{Name: e.Name, IP: ip, Ports: e.Ports}
			}
		}
		if cfg.NoExternalHosts {
			clear(env.Externals)
		}
	default:
		var err error
		if env.REST, err = kubeconfig.Load(cfg.Kubeconfig, ""); err != nil {
			return nil, err
		}
	}
	env.REST.QPS, env.REST.Burst = 50, 100
	client, err := kubernetes.NewForConfig(env.REST)
	if err != nil {
		return nil, fmt.Errorf("kube client: %w", err)
	}
	env.Client = client
	return env, nil
}

// transport returns the probe transport for a set of endpoints: on the local
// cluster a batch agent runs inside the source's network namespace (pods and
// external hosts alike); elsewhere it runs in the pod's probe container
// through kube exec, and external hosts cannot be sources.
func (e *Env) transport(podUIDs map[string]string) (matrix.Transport, func(matrix.Endpoint) bool, error) {
	if e.local == nil {
		t := transport.NewKubeExec(e.REST, e.Client, ProbeContainer)
		return t, func(ep matrix.Endpoint) bool { return !ep.External }, nil
	}
	return e.local.ProbeTransport(podUIDs), nil, nil
}

// binDir finds the netpolcheck binaries: the configured directory, or bin/
// of the checkout the suites run from.
func binDir(cfg Config) (string, error) {
	if cfg.BinDir != "" {
		return filepath.Abs(cfg.BinDir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "bin", local.ProbeBinary)); err == nil {
			return filepath.Join(dir, "bin"), nil
		}
		if dir == filepath.Dir(dir) {
			return "", errors.New("netpolcheck binaries not found: run `make build` or set " + EnvBinDir)
		}
	}
}
