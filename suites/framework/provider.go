package framework

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// Provider is a kind of cluster the suites run against. The suites'
// framework and `netpolcheck run` use clusters only through it.
type Provider interface {
	// Up brings the cluster up when none runs (started reports whether it
	// did), or attaches to the one that runs, and creates the external hosts
	// the scenarios use where the provider has any.
	Up(ctx context.Context, externals []ExternalHost) (started bool, err error)
	// Attach opens the running cluster for one process.
	Attach() (Attachment, error)
	// Down takes down a cluster Up brought up.
	Down(ctx context.Context) error
}

// Attachment is one process's connection to a running cluster.
type Attachment interface {
	// REST is the cluster's client configuration.
	REST() *rest.Config
	// ExternalHosts are the cluster's external hosts (none on most).
	ExternalHosts() []ExternalHost
	// ProbeTransport returns the probe transport for the pods of podUIDs
	// (pod endpoint name to UID) and which endpoints can be probe sources
	// (nil: every endpoint).
	ProbeTransport(client kubernetes.Interface, podUIDs map[string]string) (matrix.Transport, func(matrix.Endpoint) bool)
}

// providerKind is one entry of the providers table: the configuration
// defaults of its clusters and how to make one.
type providerKind struct {
	defaults func(cfg *Config) error
	make     func(cfg Config) Provider
}

// providers is the table of providers, by name.
func providers() map[string]providerKind {
	attach := providerKind{defaults: needKubeconfig, make: func(cfg Config) Provider { return kubeconfigProvider{cfg: cfg} }}
	return map[string]providerKind{
		ProviderLocal:     {defaults: localDefaults, make: func(cfg Config) Provider { return &localProvider{cfg: cfg} }},
		ProviderKind:      attach,
		ProviderExisting:  attach,
		ProviderInCluster: {defaults: func(*Config) error { return nil }, make: func(Config) Provider { return inClusterProvider{} }},
	}
}

// ProviderNames lists the providers, sorted.
func ProviderNames() []string {
	var names []string
	for name := range providers() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// providerKindOf looks a provider up by name.
func providerKindOf(name string) (providerKind, error) {
	kind, ok := providers()[name]
	if !ok {
		return providerKind{}, fmt.Errorf("%s=%q: want %s", EnvProvider, name, strings.Join(ProviderNames(), ", "))
	}
	return kind, nil
}

// NewProvider returns the provider of a configuration ConfigFromEnv (or
// Config.Defaults) completed.
func NewProvider(cfg Config) (Provider, error) {
	kind, err := providerKindOf(cfg.Provider)
	if err != nil {
		return nil, err
	}
	return kind.make(cfg), nil
}

// localProvider is the local cluster of network namespaces on this machine:
// it is brought up when none runs, has external hosts, and probes from
// inside each source's network namespace.
type localProvider struct {
	cfg     Config
	cluster *local.Cluster
}

func localDefaults(cfg *Config) error {
	if cfg.LocalState == "" {
		cfg.LocalState = filepath.Join(local.DefaultStateRoot, cfg.LocalName)
	}
	if cfg.CNI == "" {
		cfg.CNI = "reference"
	}
	return nil
}

func (p *localProvider) Up(ctx context.Context, externals []ExternalHost) (bool, error) {
	started := false
	c, err := local.Load(p.cfg.LocalState)
	if err != nil {
		bin, berr := binDir(p.cfg)
		if berr != nil {
			return false, berr
		}
		opts := local.Options{Name: p.cfg.LocalName, StateDir: p.cfg.LocalState, BinDir: bin, Progress: os.Stderr}
		opts.Kube.SourceDir = filepath.Join(filepath.Dir(bin), "cluster", "local", "kubebin")
		opts.CoreDNS.SourceDir = filepath.Join(filepath.Dir(bin), "cluster", "local", "corednsbin")
		if c, err = local.Up(ctx, opts); err != nil {
			return false, fmt.Errorf("bringing the local cluster up: %w", err)
		}
		started = true
	}
	for _, e := range externals {
		if _, err := c.AddExternal(ctx, e.Name, []netip.Addr{e.IP}, e.Ports); err != nil {
			return started, err
		}
	}
	return started, nil
}

func (p *localProvider) Attach() (Attachment, error) {
	c, err := local.Load(p.cfg.LocalState)
	if err != nil {
		return nil, err
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	a := localAttachment{cluster: c, rest: cfg}
	if !p.cfg.NoExternalHosts {
		for _, e := range c.Externals {
			for _, ip := range e.IPs {
				a.externals = append(a.externals, ExternalHost{Name: e.Name, IP: ip, Ports: e.Ports})
			}
		}
	}
	return a, nil
}

func (p *localProvider) Down(ctx context.Context) error {
	return local.Down(ctx, p.cfg.LocalName, p.cfg.LocalState)
}

type localAttachment struct {
	cluster   *local.Cluster
	rest      *rest.Config
	externals []ExternalHost
}

func (a localAttachment) REST() *rest.Config            { return a.rest }
func (a localAttachment) ExternalHosts() []ExternalHost { return a.externals }

// ProbeTransport runs a batch agent inside the source's network namespace:
// pods and external hosts alike.
func (a localAttachment) ProbeTransport(_ kubernetes.Interface, podUIDs map[string]string) (matrix.Transport, func(matrix.Endpoint) bool) {
	return a.cluster.ProbeTransport(podUIDs), nil
}

// kubeconfigProvider is a cluster that runs already (kind, or any other)
// reached through a kubeconfig: nothing to bring up or down, no external
// hosts, probes through kube exec into each pod's probe container.
type kubeconfigProvider struct{ cfg Config }

func needKubeconfig(cfg *Config) error {
	if cfg.Kubeconfig == "" {
		return fmt.Errorf("%s=%s needs a kubeconfig: set %s or KUBECONFIG", EnvProvider, cfg.Provider, EnvKubeconfig)
	}
	return nil
}

func (kubeconfigProvider) Up(context.Context, []ExternalHost) (bool, error) { return false, nil }

func (p kubeconfigProvider) Attach() (Attachment, error) {
	cfg, err := kubeconfig.Load(p.cfg.Kubeconfig, p.cfg.Context)
	if err != nil {
		return nil, err
	}
	return kubeExecAttachment{rest: cfg}, nil
}

func (kubeconfigProvider) Down(context.Context) error { return nil }

// inClusterProvider is the cluster this process runs in, as a pod: its
// service account's credentials (rest.InClusterConfig), no external hosts,
// probes through kube exec as on any other cluster.
type inClusterProvider struct{}

func (inClusterProvider) Up(context.Context, []ExternalHost) (bool, error) { return false, nil }

func (inClusterProvider) Attach() (Attachment, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("running in the cluster (the in-cluster provider, a pod's service account): %w", err)
	}
	return kubeExecAttachment{rest: cfg}, nil
}

func (inClusterProvider) Down(context.Context) error { return nil }

type kubeExecAttachment struct{ rest *rest.Config }

func (a kubeExecAttachment) REST() *rest.Config          { return a.rest }
func (kubeExecAttachment) ExternalHosts() []ExternalHost { return nil }

// ProbeTransport runs the batch agent in the pod's probe container through
// kube exec; external hosts cannot be sources.
func (a kubeExecAttachment) ProbeTransport(client kubernetes.Interface, _ map[string]string) (matrix.Transport, func(matrix.Endpoint) bool) {
	return transport.NewKubeExec(a.rest, client, ProbeContainer), func(ep matrix.Endpoint) bool { return !ep.External }
}

// binDir finds the netpolcheck binaries: the configured directory, or bin/
// of the checkout the suites run from.
func binDir(cfg Config) (string, error) {
	if cfg.BinDir != "" {
		return filepath.Abs(cfg.BinDir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the netpolcheck binaries: %w", err)
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
