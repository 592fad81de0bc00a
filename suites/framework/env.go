package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Env is one suite process's connection to the cluster.
type Env struct {
	Config
	Client kubernetes.Interface
	REST   *rest.Config
	// Suite is the suite's name and Process numbers this parallel process
	// (1-based): the names of the process's objects derive from them, as
	// the suites of one run share its run ID.
	Suite   string
	Process int
	// Externals are the external hosts every scenario may use, by IP (local
	// cluster only, unless NoExternalHosts: elsewhere there are none and
	// cells involving them are not probed).
	Externals  map[netip.Addr]ExternalHost
	attachment Attachment
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
	// StartedCluster is set when the first process brought the cluster up
	// itself, and must take it down at the end.
	StartedCluster bool `json:"startedCluster"`
}

// Prepare runs once per run, on the first process: the provider brings the
// cluster up if none runs (the local cluster) or attaches to it, and creates
// every external host the scenarios use where it has any.
func Prepare(ctx context.Context, cfg Config, externals []ExternalHost) (Shared, error) {
	shared := Shared{RunID: cfg.RunID}
	p, err := NewProvider(cfg)
	if err != nil {
		return shared, err
	}
	shared.StartedCluster, err = p.Up(ctx, externals)
	return shared, err
}

// Finish runs once at the end of the run, on the first process: it takes
// down a cluster Prepare brought up.
func Finish(ctx context.Context, cfg Config, shared Shared) error {
	if !shared.StartedCluster {
		return nil
	}
	p, err := NewProvider(cfg)
	if err != nil {
		return err
	}
	return p.Down(ctx)
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

// Connect opens the cluster for one process of a suite.
func Connect(cfg Config, shared Shared, suite string, process int) (*Env, error) {
	cfg.RunID = shared.RunID
	p, err := NewProvider(cfg)
	if err != nil {
		return nil, err
	}
	attachment, err := p.Attach()
	if err != nil {
		return nil, err
	}
	env := &Env{Config: cfg, Suite: suite, Process: process, Externals: map[netip.Addr]ExternalHost{}, attachment: attachment}
	for _, e := range attachment.ExternalHosts() {
		env.Externals[e.IP] = e
	}
	env.REST = rest.CopyConfig(attachment.REST())
	env.REST.QPS, env.REST.Burst = 50, 100
	client, err := kubernetes.NewForConfig(env.REST)
	if err != nil {
		return nil, fmt.Errorf("kube client: %w", err)
	}
	env.Client = client
	return env, nil
}

// processSuffix ends the names of this process's objects: the run ID, the
// suite and the process number (RUNID-SUITE-pN).
func (e *Env) processSuffix() string { return fmt.Sprintf("%s-%s-p%d", e.RunID, e.Suite, e.Process) }
