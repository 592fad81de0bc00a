// Package subnetbridge is the CNI plugin that attaches pods to a node's
// Flannel network on the local cluster (netpolcheck-subnet-bridge). It does
// what Flannel's own small CNI plugin (github.com/flannel-io/cni-plugin,
// which the local cluster does not build) does: read the node's subnet
// file that flanneld writes (/run/flannel/subnet.env: FLANNEL_NETWORK,
// FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ), turn the network
// configuration's delegate into a bridge plugin configuration (isGateway,
// ipMasq unless flanneld masquerades, the subnet's MTU, host-local IPAM on
// the node's subnet with a route to the whole network), keep that
// configuration per container for DEL, and run the delegate plugin.
package subnetbridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Defaults of the network configuration, as Flannel's plugin has them.
const (
	DefaultSubnetFile = "/run/flannel/subnet.env"
	DefaultDataDir    = "/var/lib/cni/flannel"
)

// Conf is the plugin's network configuration.
type Conf struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// SubnetFile is flanneld's subnet file; DataDir keeps each container's
	// delegate configuration until its DEL.
	SubnetFile string `json:"subnetFile,omitempty"`
	DataDir    string `json:"dataDir,omitempty"`
	// Delegate holds the delegate plugin's settings (default type bridge).
	Delegate map[string]any `json:"delegate,omitempty"`
	// IPAM settings to keep in the delegate's (type, extra routes).
	IPAM map[string]any `json:"ipam,omitempty"`
	// RuntimeConfig is passed on to the delegate (port mappings...).
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

// ParseConf reads a network configuration and fills in the defaults.
func ParseConf(data []byte) (Conf, error) {
	conf := Conf{SubnetFile: DefaultSubnetFile, DataDir: DefaultDataDir}
	if err := json.Unmarshal(data, &conf); err != nil {
		return Conf{}, fmt.Errorf("parsing the network configuration: %w", err)
	}
	return conf, nil
}

// SubnetEnv is what flanneld's subnet file says about the node.
type SubnetEnv struct {
	// Network is the whole pod network, Subnet the node's part of it.
	Network netip.Prefix
	Subnet  netip.Prefix
	MTU     int
	// IPMasq says whether flanneld masquerades the pods' traffic leaving
	// the network itself.
	IPMasq bool
}

// ReadSubnetEnv reads flanneld's subnet file (KEY=VALUE lines), requiring
// FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU and FLANNEL_IPMASQ.
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("reading the subnet file (has flanneld started?): %w", err)
	}
	var env SubnetEnv
	seen := map[string]bool{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(scanner.Text()), "=")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "FLANNEL_NETWORK":
			// Several networks are comma-separated; the first is IPv4.
			first, _, _ := strings.Cut(value, ",")
			env.Network, err = netip.ParsePrefix(first)
			env.Network = env.Network.Masked()
		case "FLANNEL_SUBNET":
			env.Subnet, err = netip.ParsePrefix(value)
			env.Subnet = env.Subnet.Masked()
		case "FLANNEL_MTU":
			env.MTU, err = strconv.Atoi(value)
		case "FLANNEL_IPMASQ":
			env.IPMasq = value == "true"
		default:
			continue
		}
		if err != nil {
			return SubnetEnv{}, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		seen[key] = true
	}
	var missing []string
	for _, key := range []string{"FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"} {
		if !seen[key] {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return SubnetEnv{}, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
	}
	return env, nil
}

// Delegate builds the delegate plugin's configuration from the network
// configuration and the node's subnet: what the configuration's delegate
// sets stays, the rest is filled in.
func Delegate(conf Conf, env SubnetEnv) (map[string]any, error) {
	delegate := map[string]any{}
	for k, v := range conf.Delegate {
		delegate[k] = v
	}
	for _, owned := range []string{"name", "ipam"} {
		if _, ok := delegate[owned]; ok {
			return nil, fmt.Errorf("the delegate must not set %q: the plugin sets it", owned)
		}
	}
	delegate["name"] = conf.Name
	setDefault(delegate, "type", "bridge")
	if _, ok := delegate["type"].(string); !ok {
		return nil, errors.New("the delegate's type must be a string")
	}
	// Masquerade in the bridge only when flanneld does not.
	setDefault(delegate, "ipMasq", !env.IPMasq)
	setDefault(delegate, "mtu", env.MTU)
	if delegate["type"] == "bridge" {
		setDefault(delegate, "isGateway", true)
	}
	if conf.CNIVersion != "" {
		delegate["cniVersion"] = conf.CNIVersion
	}
	if conf.RuntimeConfig != nil {
		delegate["runtimeConfig"] = conf.RuntimeConfig
	}
	ipam := map[string]any{}
	for k, v := range conf.IPAM {
		ipam[k] = v
	}
	setDefault(ipam, "type", "host-local")
	ipam["ranges"] = []any{[]any{map[string]any{"subnet": env.Subnet.String()}}}
	routes, _ := ipam["routes"].([]any)
	ipam["routes"] = append(routes, map[string]any{"dst": env.Network.String()})
	delegate["ipam"] = ipam
	return delegate, nil
}

func setDefault(m map[string]any, key string, value any) {
	if _, ok := m[key]; !ok {
		m[key] = value
	}
}

// scratchPath is where the delegate configuration of a container is kept
// between its ADD and its DEL.
func scratchPath(dataDir, containerID string) (string, error) {
	if containerID == "" || strings.ContainsAny(containerID, `/\`) || containerID == "." || containerID == ".." {
		return "", fmt.Errorf("container ID %q is not a file name", containerID)
	}
	return filepath.Join(dataDir, containerID), nil
}

// SaveDelegate keeps the delegate configuration of a container for its DEL.
func SaveDelegate(dataDir, containerID string, delegate []byte) error {
	path, err := scratchPath(dataDir, containerID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("keeping the delegate configuration: %w", err)
	}
	if err := os.WriteFile(path, delegate, 0o600); err != nil {
		return fmt.Errorf("keeping the delegate configuration: %w", err)
	}
	return nil
}

// LoadDelegate returns the delegate configuration kept for a container and
// its type; os.ErrNotExist when none is (DEL then has nothing to undo).
func LoadDelegate(dataDir, containerID string) (data []byte, pluginType string, err error) {
	path, err := scratchPath(dataDir, containerID)
	if err != nil {
		return nil, "", err
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil || head.Type == "" {
		return nil, "", fmt.Errorf("the kept delegate configuration %s has no type (%v)", path, err)
	}
	return data, head.Type, nil
}

// ForgetDelegate removes the delegate configuration kept for a container.
func ForgetDelegate(dataDir, containerID string) error {
	path, err := scratchPath(dataDir, containerID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forgetting the delegate configuration: %w", err)
	}
	return nil
}
