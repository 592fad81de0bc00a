package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
)

// Names and defaults shared by the plugin, its conflist and the node agents.
const (
	// PluginType is the plugin's binary name and its "type" in a conflist.
	PluginType = "netpolcheck-cni"
	// NetworkName is the name of the network in the conflist.
	NetworkName = "netpolcheck"
	// DefaultDataDir is where IPAM state lives when the config names none.
	DefaultDataDir = "/var/lib/cni/netpolcheck"
	// ConflistFileName is the conflist's file name in /etc/cni/net.d.
	ConflistFileName = "10-netpolcheck.conflist"
	// CNIVersion is the spec version the generated conflist declares.
	CNIVersion = "1.1.0"
)

// NetConf is the plugin's entry in a conflist.
type NetConf struct {
	types.PluginConf
	// Ranges are the node's pod CIDRs: one IPv4 prefix and optionally one
	// IPv6 prefix, such as "10.244.1.0/24" and "fd00:10:244:1::/64".
	Ranges []string `json:"ranges"`
	// DataDir holds the IPAM state; DefaultDataDir when empty.
	DataDir string `json:"dataDir,omitempty"`
	// MTU of both ends of every pod veth; the kernel default when zero.
	MTU int `json:"mtu,omitempty"`
}

// config is a parsed and validated NetConf.
type config struct {
	NetConf
	// ranges holds the parsed Ranges, IPv4 first.
	ranges []netip.Prefix
}

// parseConfig decodes and validates the plugin configuration from stdin.
// Every failure is a CNI error naming the offending field.
func parseConfig(stdin []byte) (*config, error) {
	var conf config
	if err := json.Unmarshal(stdin, &conf.NetConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decoding netpolcheck-cni configuration", err.Error())
	}
	if conf.DataDir == "" {
		conf.DataDir = DefaultDataDir
	}
	invalid := func(format string, args ...any) error {
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid netpolcheck-cni configuration: "+fmt.Sprintf(format, args...), "")
	}
	if len(conf.Ranges) == 0 {
		return nil, invalid(`"ranges" is empty: give the node's pod CIDR, e.g. ["10.244.1.0/24"]`)
	}
	var v4, v6 []netip.Prefix
	for i, text := range conf.Ranges {
		r, err := netip.ParsePrefix(text)
		if err != nil {
			return nil, invalid("ranges[%d]: %v", i, err)
		}
		if err := ipam.ValidateRange(r); err != nil {
			return nil, invalid("ranges[%d]: %v", i, err)
		}
		if r.Addr().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	if len(v4) > 1 || len(v6) > 1 {
		return nil, invalid(`"ranges" %v: give at most one IPv4 and one IPv6 prefix`, conf.Ranges)
	}
	conf.ranges = append(v4, v6...)
	if conf.MTU != 0 && (conf.MTU < 68 || conf.MTU > 65535) {
		return nil, invalid(`"mtu" %d is outside 68..65535`, conf.MTU)
	}
	return &conf, nil
}

// pool returns the IPAM pool for this configuration.
func (c *config) pool() (*ipam.Pool, error) {
	pool, err := ipam.New(c.DataDir, c.Name, c.ranges)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid netpolcheck-cni configuration", err.Error())
	}
	return pool, nil
}

// conflist is the JSON shape of a network configuration list.
type conflist struct {
	CNIVersion string        `json:"cniVersion"`
	Name       string        `json:"name"`
	Plugins    []pluginEntry `json:"plugins"`
}

// pluginEntry is the plugin's entry as written to a conflist: NetConf
// without the runtime-filled fields of types.PluginConf.
type pluginEntry struct {
	Type    string   `json:"type"`
	Ranges  []string `json:"ranges"`
	DataDir string   `json:"dataDir,omitempty"`
	MTU     int      `json:"mtu,omitempty"`
}

// Conflist renders the conflist of a node whose pod CIDRs are ranges.
// An empty dataDir keeps the plugin default; mtu 0 keeps the kernel default.
func Conflist(ranges []netip.Prefix, dataDir string, mtu int) ([]byte, error) {
	entry := pluginEntry{Type: PluginType, DataDir: dataDir, MTU: mtu}
	for _, r := range ranges {
		entry.Ranges = append(entry.Ranges, r.String())
	}
	// Validate the entry with the same parser the plugin uses.
	check := NetConf{Ranges: entry.Ranges, DataDir: dataDir, MTU: mtu}
	check.Name, check.Type = NetworkName, PluginType
	raw, err := json.Marshal(check)
	if err != nil {
		return nil, fmt.Errorf("rendering conflist: %w", err)
	}
	if _, err := parseConfig(raw); err != nil {
		return nil, fmt.Errorf("conflist for ranges %v: %w", ranges, err)
	}
	list := conflist{CNIVersion: CNIVersion, Name: NetworkName, Plugins: []pluginEntry{entry}}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering conflist: %w", err)
	}
	return append(out, '\n'), nil
}
