package plugin

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
)

func TestParseConfigDefaultsAndOrder(t *testing.T) {
	conf, err := parseConfig([]byte(`{"cniVersion": "1.1.0", "name": "netpolcheck", "type": "netpolcheck-cni",
		"ranges": ["fd00:10:244:1::/64", "10.244.1.0/24"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.DataDir != DefaultDataDir {
		t.Errorf("DataDir = %q, want the default", conf.DataDir)
	}
	if len(conf.ranges) != 2 || !conf.ranges[0].Addr().Is4() {
		t.Errorf("ranges = %v, want IPv4 first", conf.ranges)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := map[string]struct {
		json string
		code uint
		msg  string
	}{
		"not json":       {`{"ranges": [`, types.ErrDecodingFailure, "decoding"},
		"no ranges":      {`{"name": "n"}`, types.ErrInvalidNetworkConfig, `"ranges" is empty`},
		"not a prefix":   {`{"name": "n", "ranges": ["10.244.1.0"]}`, types.ErrInvalidNetworkConfig, "ranges[0]"},
		"too small":      {`{"name": "n", "ranges": ["10.244.1.0/31"]}`, types.ErrInvalidNetworkConfig, "too small"},
		"two IPv6":       {`{"name": "n", "ranges": ["fd00:1::/64", "fd00:2::/64"]}`, types.ErrInvalidNetworkConfig, "at most one"},
		"mtu too large":  {`{"name": "n", "ranges": ["10.244.1.0/24"], "mtu": 70000}`, types.ErrInvalidNetworkConfig, `"mtu"`},
		"ranges wrongly": {`{"name": "n", "ranges": {"a": 1}}`, types.ErrDecodingFailure, "decoding"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.json))
			cniErr, ok := err.(*types.Error)
			if !ok {
				t.Fatalf("got %v (%T), want a *types.Error", err, err)
			}
			if cniErr.Code != tc.code || !strings.Contains(cniErr.Msg, tc.msg) {
				t.Errorf("got code %d %q, want code %d mentioning %q", cniErr.Code, cniErr.Msg, tc.code, tc.msg)
			}
		})
	}
}

func TestConflistRoundTrip(t *testing.T) {
	ranges := []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24"), netip.MustParsePrefix("fd00:10:244:3::/64")}
	out, err := Conflist(ranges, "/var/lib/test", 1400)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != CNIVersion || list.Name != NetworkName || len(list.Plugins) != 1 {
		t.Fatalf("conflist header = %+v", list)
	}
	if strings.Contains(string(out), `"ipam"`) || strings.Contains(string(out), `"dns"`) {
		t.Errorf("conflist carries empty runtime fields:\n%s", out)
	}
	// The runtime injects the network name into each plugin's config.
	entry := strings.Replace(string(list.Plugins[0]), "{", `{"name": "netpolcheck",`, 1)
	conf, err := parseConfig([]byte(entry))
	if err != nil {
		t.Fatal(err)
	}
	if conf.Type != PluginType || conf.DataDir != "/var/lib/test" || conf.MTU != 1400 || len(conf.ranges) != 2 {
		t.Errorf("parsed back %+v", conf.NetConf)
	}
	if _, err := Conflist([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/31")}, "", 0); err == nil {
		t.Error("Conflist accepted a range without room for pods")
	}
}

func TestHostVethNameAndAlias(t *testing.T) {
	name := HostVethName("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "eth0")
	if len(name) != 15 || !strings.HasPrefix(name, HostVethPrefix) {
		t.Errorf("HostVethName = %q, want npc + 12 hex (15 bytes)", name)
	}
	if HostVethName("c1", "eth0") == HostVethName("c1", "eth1") {
		t.Error("the interface name does not change the veth name")
	}
	owner := ipam.Owner{ContainerID: "c1", IfName: "eth0"}
	if got, ok := parseVethAlias("netpolcheck", vethAlias("netpolcheck", owner)); !ok || got != owner {
		t.Errorf("alias round trip gave %v, %v", got, ok)
	}
	for _, alias := range []string{"", "netpolcheck-cni/other/c1/eth0", "netpolcheck-cni/netpolcheck/c1", "something else"} {
		if _, ok := parseVethAlias("netpolcheck", alias); ok {
			t.Errorf("parseVethAlias accepted %q", alias)
		}
	}
}
