// Package kind creates and deletes kind clusters for the suites through
// sigs.k8s.io/e2e-framework's kind provider (which drives the kind binary):
// one control-plane node and N workers, no default CNI, the project's pod
// and service subnets; it loads the netpolcheck image into the nodes and
// installs a CNI with cluster/cni.
//
// kind needs a container engine (Docker, or podman with
// KIND_EXPERIMENTAL_PROVIDER=podman); every entry point checks for it first
// and fails with a clear error without one.
package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	e2ekind "sigs.k8s.io/e2e-framework/support/kind"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

// Defaults of Options.
const (
	DefaultName    = "netpolcheck"
	DefaultWorkers = 2
	DefaultCNI     = "reference"
	DefaultTimeout = 10 * time.Minute
)

// Files of a cluster's state directory.
const (
	ConfigFile     = "kind-config.yaml"
	KubeconfigFile = "kubeconfig"
	stateFile      = "cluster.json"
)

// Options configure Up, Down and ExportLogs; Down and ExportLogs use only
// Name, StateDir, KindBinary, CacheDir and Progress.
type Options struct {
	// Name of the kind cluster (default DefaultName).
	Name string
	// Workers is the number of worker nodes besides the control-plane node
	// (default DefaultWorkers; 0 is a single node that runs pods too).
	Workers int
	// CNI names the cni installer (default DefaultCNI).
	CNI string
	// Image is the netpolcheck image, loaded into every node: the suites'
	// probe pods and the reference CNI run it (default
	// deploy.DefaultImage). It must be in the local engine and carry a tag
	// other than latest, so pods use the loaded copy instead of pulling.
	Image string
	// NodeImage is the kindest/node image (default NodeImage).
	NodeImage string
	// StateDir holds the kind config, the kubeconfig and what Up installed
	// (default DefaultStateDir(Name)).
	StateDir string
	// KindBinary is the kind executable (default: FindKind).
	KindBinary string
	// CacheDir is where FindKind builds kind (default
	// <user cache dir>/netpolcheck).
	CacheDir string
	// Timeout bounds the CNI's readiness and then the nodes' (default
	// DefaultTimeout).
	Timeout time.Duration
	// Progress receives progress lines (default io.Discard).
	Progress io.Writer
}

// Cluster is a kind cluster Up brought up.
type Cluster struct {
	Name       string
	StateDir   string
	Kubeconfig string
	CNI        string
	Image      string
}

// state is what Up records in the state directory.
type state struct {
	Name      string `json:"name"`
	CNI       string `json:"cni"`
	Image     string `json:"image"`
	Workers   int    `json:"workers"`
	NodeImage string `json:"nodeImage"`
}

// DefaultStateDir is the state directory of the cluster called name.
func DefaultStateDir(name string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the user cache directory: %w", err)
	}
	return filepath.Join(dir, "netpolcheck", "kind", name), nil
}

// validClusterName reports whether kind accepts name as a cluster name (it
// names containers and the kubeconfig context after it).
func validClusterName(name string) bool {
	return regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$`).MatchString(name)
}

// withDefaults fills and checks the options.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if !validClusterName(o.Name) {
		return o, fmt.Errorf("cluster name %q: want lower-case letters, digits and dashes (at most 50)", o.Name)
	}
	if o.Workers < 0 {
		return o, fmt.Errorf("%d workers: want 0 or more", o.Workers)
	}
	if o.CNI == "" {
		o.CNI = DefaultCNI
	}
	if o.Image == "" {
		o.Image = deploy.DefaultImage
	}
	if err := checkImageTag(o.Image); err != nil {
		return o, err
	}
	if o.NodeImage == "" {
		o.NodeImage = NodeImage
	}
	if o.StateDir == "" {
		dir, err := DefaultStateDir(o.Name)
		if err != nil {
			return o, err
		}
		o.StateDir = dir
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("locating the user cache directory: %w", err)
		}
		o.CacheDir = filepath.Join(dir, "netpolcheck")
	}
	for what, path := range map[string]string{"state directory": o.StateDir, "cache directory": o.CacheDir, "kind binary": o.KindBinary} {
		// The e2e-framework runs kind through a command line split on spaces.
		if strings.ContainsAny(path, " \t\n'\"$") {
			return o, fmt.Errorf("%s %q: spaces, quotes and $ are not supported (kind is run through a split command line)", what, path)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// checkImageTag rejects images that pods would pull instead of using the
// copy kind loaded: untagged or :latest images default to imagePullPolicy
// Always.
func checkImageTag(image string) error {
	if strings.Contains(image, "@") {
		return nil
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, tagged := strings.Cut(last, ":")
	if !tagged || tag == "latest" {
		return fmt.Errorf("image %q: give it a tag other than latest (pods pull untagged and :latest images instead of using the copy kind loads)", image)
	}
	return nil
}

// Up creates the kind cluster (or reuses one of the same name), loads the
// image into its nodes, installs the CNI and waits until it and the nodes
// are ready.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	installer, err := cni.New(opts.CNI, cni.Options{Image: opts.Image, PodCIDR: PodSubnet, KubeVersion: KubernetesVersion})
	if err != nil {
		return nil, err
	}
	if err := CheckEngine(ctx); err != nil {
		return nil, err
	}
	if err := checkPreviousState(opts); err != nil {
		return nil, err
	}
	provider, err := newProvider(ctx, opts)
	if err != nil {
		return nil, err
	}
	configPath, kubeconfig, err := writeConfig(opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "kind: creating cluster %s (1 control-plane node, %d workers, %s, CNI %s); an existing cluster of that name is reused\n",
		opts.Name, opts.Workers, opts.NodeImage, installer.Name())
	created, err := provider.Create(ctx, "--config", configPath, "--kubeconfig", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("creating kind cluster %s: %w", opts.Name, err)
	}
	if err := moveFile(created, kubeconfig); err != nil {
		return nil, fmt.Errorf("kind cluster %s: %w", opts.Name, err)
	}
	if err := checkImage(ctx, opts.Image); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "kind: loading %s into the nodes\n", opts.Image)
	if err := provider.LoadImage(ctx, opts.Image); err != nil {
		return nil, fmt.Errorf("kind cluster %s: %w", opts.Name, err)
	}
	if err := installCNI(ctx, opts, installer, kubeconfig); err != nil {
		return nil, err
	}
	st := state{Name: opts.Name, CNI: installer.Name(), Image: opts.Image, Workers: opts.Workers, NodeImage: opts.NodeImage}
	if err := writeJSON(filepath.Join(opts.StateDir, stateFile), st); err != nil {
		return nil, err
	}
	return &Cluster{Name: opts.Name, StateDir: opts.StateDir, Kubeconfig: kubeconfig, CNI: installer.Name(), Image: opts.Image}, nil
}

// Down deletes the kind cluster and its state directory. Deleting a
// cluster that does not exist succeeds.
func Down(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := CheckEngine(ctx); err != nil {
		return err
	}
	provider, err := newProvider(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Progress, "kind: deleting cluster %s\n", opts.Name)
	if err := provider.Destroy(ctx); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", opts.Name, err)
	}
	if err := os.RemoveAll(opts.StateDir); err != nil {
		return fmt.Errorf("removing the state of kind cluster %s: %w", opts.Name, err)
	}
	return nil
}

// ExportLogs writes the logs of every node of the cluster (kubelet,
// containerd, pods) under dir.
func ExportLogs(ctx context.Context, opts Options, dir string) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if strings.ContainsAny(dir, " \t\n'\"$") {
		return fmt.Errorf("log directory %q: spaces, quotes and $ are not supported", dir)
	}
	if err := CheckEngine(ctx); err != nil {
		return err
	}
	provider, err := newProvider(ctx, opts)
	if err != nil {
		return err
	}
	if err := provider.ExportLogs(ctx, dir); err != nil {
		return fmt.Errorf("kind cluster %s: %w", opts.Name, err)
	}
	return nil
}

// newProvider returns the e2e-framework kind provider for the cluster,
// with the kind binary resolved (and built if needed).
func newProvider(ctx context.Context, opts Options) (*e2ekind.Cluster, error) {
	bin, err := FindKind(ctx, opts.KindBinary, opts.CacheDir, opts.Progress)
	if err != nil {
		return nil, err
	}
	provider := e2ekind.NewCluster(opts.Name)
	provider.WithPath(bin)
	return provider, nil
}

// checkPreviousState refuses to install a CNI into a cluster that Up
// already gave another one.
func checkPreviousState(opts Options) error {
	previous, err := readState(opts.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kind cluster %s: %w", opts.Name, err)
	}
	if previous.CNI != opts.CNI {
		return fmt.Errorf("kind cluster %s already runs CNI %s: take it down first (netpolcheck kind down --name %s) to install %s",
			opts.Name, previous.CNI, opts.Name, opts.CNI)
	}
	return nil
}

// Load returns the cluster Up recorded in stateDir: its name, CNI, image
// and kubeconfig. A state directory without a finished Up is an error
// that wraps fs.ErrNotExist.
func Load(stateDir string) (*Cluster, error) {
	st, err := readState(stateDir)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(stateDir, KubeconfigFile)
	if _, err := os.Stat(kubeconfig); err != nil {
		return nil, fmt.Errorf("kind cluster %s: %w", st.Name, err)
	}
	return &Cluster{Name: st.Name, StateDir: stateDir, Kubeconfig: kubeconfig, CNI: st.CNI, Image: st.Image}, nil
}

// readState reads what Up recorded in stateDir.
func readState(stateDir string) (state, error) {
	path := filepath.Join(stateDir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return state{}, fmt.Errorf("reading the cluster state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return state{}, fmt.Errorf("reading the cluster state %s: %w", path, err)
	}
	if st.CNI == "" || st.Image == "" {
		return state{}, fmt.Errorf("the cluster state %s names no CNI or no image", path)
	}
	return st, nil
}

// writeConfig writes the kind config into the state directory and returns
// its path and the kubeconfig's.
func writeConfig(opts Options) (configPath, kubeconfig string, err error) {
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return "", "", fmt.Errorf("creating the state directory: %w", err)
	}
	data, err := ConfigYAML(Config(opts.Name, opts.Workers, opts.NodeImage))
	if err != nil {
		return "", "", err
	}
	configPath = filepath.Join(opts.StateDir, ConfigFile)
	if err := os.WriteFile(configPath, data, 0o644); err != nil {
		return "", "", fmt.Errorf("writing the kind config: %w", err)
	}
	return configPath, filepath.Join(opts.StateDir, KubeconfigFile), nil
}

// moveFile moves the kubeconfig the provider wrote to a temporary file
// into place (private: it holds the cluster's admin credentials).
func moveFile(from, to string) error {
	if from == to {
		return nil
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	if err := os.Chmod(to, 0o600); err != nil { // kind may have created it wider
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	if err := os.Remove(from); err != nil {
		return fmt.Errorf("removing the temporary kubeconfig: %w", err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
