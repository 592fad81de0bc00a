// Package framework runs netpolcheck's scenarios against a cluster from
// Ginkgo suites: it connects to the cluster the configuration names (the
// local cluster by default, kind, or any kubeconfig), creates each
// scenario's namespaces and probe pods, applies its policies through the API
// server, reads the stored objects back, computes the expected truth table
// with the engine, probes the whole matrix in parallel and asserts that the
// cluster agrees, cell by cell, with a readable failure otherwise.
package framework

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Providers.
const (
	ProviderLocal    = "local"
	ProviderKind     = "kind"
	ProviderExisting = "existing"
	// ProviderInCluster is the cluster the suites run inside (a Job's pod):
	// client-go's in-cluster configuration, its service account's token.
	ProviderInCluster = "in-cluster"
)

// Environment variables that configure the suites (ginkgo passes them to
// every parallel process).
const (
	EnvProvider     = "NETPOLCHECK_PROVIDER"      // local (default), kind, existing, in-cluster
	EnvKubeconfig   = "NETPOLCHECK_KUBECONFIG"    // existing/kind: the kubeconfig (default $KUBECONFIG)
	EnvContext      = "NETPOLCHECK_CONTEXT"       // existing/kind: the kubeconfig context (default its current one)
	EnvLocalName    = "NETPOLCHECK_LOCAL_NAME"    // local: cluster name (default "local")
	EnvLocalState   = "NETPOLCHECK_LOCAL_STATE"   // local: state dir (default /run/netpolcheck/NAME)
	EnvBinDir       = "NETPOLCHECK_BIN_DIR"       // local: the netpolcheck binaries (default bin/ of the checkout)
	EnvImage        = "NETPOLCHECK_IMAGE"         // kind/existing: the probe image
	EnvProbeTimeout = "NETPOLCHECK_PROBE_TIMEOUT" // per probe (default 1s)
	EnvConvergence  = "NETPOLCHECK_CONVERGENCE"   // how long wrong cells are retried (default 15s)
	EnvRunID        = "NETPOLCHECK_RUN_ID"        // names this run's namespaces (default random)
	EnvCNI          = "NETPOLCHECK_CNI"           // the CNI's name for the reports (default "reference" on local)
	// local: "none" probes without the cluster's external hosts, as on kind
	// and existing clusters, whose cells are then reported as not probed.
	EnvExternalHosts = "NETPOLCHECK_EXTERNAL_HOSTS"
)

// DefaultImage is the probe image on kind and existing clusters.
const DefaultImage = "ghcr.io/netpolcheck/netpolcheck:dev"

// Config is the suites' configuration.
type Config struct {
	Provider     string
	Kubeconfig   string
	Context      string
	LocalName    string
	LocalState   string
	BinDir       string
	Image        string
	ProbeTimeout time.Duration
	Convergence  time.Duration
	RunID        string
	CNI          string
	// NoExternalHosts: the local cluster's external hosts are not used.
	NoExternalHosts bool
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Provider:   getenv(EnvProvider, ProviderLocal),
		Kubeconfig: getenv(EnvKubeconfig, os.Getenv("KUBECONFIG")),
		Context:    os.Getenv(EnvContext),
		LocalName:  getenv(EnvLocalName, "local"),
		LocalState: os.Getenv(EnvLocalState),
		BinDir:     os.Getenv(EnvBinDir),
		Image:      getenv(EnvImage, DefaultImage),
		RunID:      os.Getenv(EnvRunID),
		CNI:        os.Getenv(EnvCNI),
	}
	var err error
	if cfg.ProbeTimeout, err = duration(EnvProbeTimeout, time.Second); err != nil {
		return cfg, err
	}
	if cfg.Convergence, err = duration(EnvConvergence, 15*time.Second); err != nil {
		return cfg, err
	}
	switch v := os.Getenv(EnvExternalHosts); v {
	case "":
	case "none":
		cfg.NoExternalHosts = true
	default:
		return cfg, fmt.Errorf("%s=%q: want none, or unset for the cluster's external hosts", EnvExternalHosts, v)
	}
	return cfg, cfg.Complete()
}

// Complete checks the provider and fills in what it defaults (the local
// cluster's state directory, the CNI's name), "unknown" for a CNI without a
// name, and a random run ID when none is set.
func (c *Config) Complete() error {
	kind, err := providerKindOf(c.Provider)
	if err != nil {
		return err
	}
	if err := kind.defaults(c); err != nil {
		return err
	}
	if c.CNI == "" {
		c.CNI = "unknown"
	}
	if c.RunID == "" {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("choosing a run ID: %w", err)
		}
		c.RunID = hex.EncodeToString(b)
	}
	return nil
}

// Environ is the configuration as the environment ConfigFromEnv reads
// (KEY=VALUE, unset fields left out): how `netpolcheck run` configures the
// suites' processes.
func (c Config) Environ() []string {
	var env []string
	for _, kv := range [][2]string{
		{EnvProvider, c.Provider}, {EnvKubeconfig, c.Kubeconfig}, {EnvContext, c.Context},
		{EnvLocalName, c.LocalName}, {EnvLocalState, c.LocalState}, {EnvBinDir, c.BinDir},
		{EnvImage, c.Image}, {EnvRunID, c.RunID}, {EnvCNI, c.CNI},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	for _, kv := range []struct {
		key string
		d   time.Duration
	}{{EnvProbeTimeout, c.ProbeTimeout}, {EnvConvergence, c.Convergence}} {
		if kv.d != 0 {
			env = append(env, kv.key+"="+kv.d.String())
		}
	}
	if c.NoExternalHosts {
		env = append(env, EnvExternalHosts+"=none")
	}
	return env
}

func getenv(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func duration(key string, fallback time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return fallback, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, nerr := strconv.Atoi(v); nerr == nil {
			return time.Duration(n) * time.Second, nil
		}
		return 0, fmt.Errorf("%s=%q: %w", key, v, err)
	}
	return d, nil
}
