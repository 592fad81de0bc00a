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
)

// Environment variables that configure the suites (ginkgo passes them to
// every parallel process).
const (
	EnvProvider     = "NETPOLCHECK_PROVIDER"      // local (default), kind, existing
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
	kind, err := providerKindOf(cfg.Provider)
	if err != nil {
		return cfg, err
	}
	if err := kind.defaults(&cfg); err != nil {
		return cfg, err
	}
	if cfg.CNI == "" {
		cfg.CNI = "unknown"
	}
	if cfg.RunID == "" {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return cfg, err
		}
		cfg.RunID = hex.EncodeToString(b)
	}
	return cfg, nil
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
