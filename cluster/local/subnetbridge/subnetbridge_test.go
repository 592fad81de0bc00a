package subnetbridge

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeEnv(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "subnet.env")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSubnetEnv(t *testing.T) {
	path := writeEnv(t, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	env, err := ReadSubnetEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if env.Network.String() != "10.244.0.0/16" || env.Subnet.String() != "10.244.2.0/24" || env.MTU != 1450 || !env.IPMasq {
		t.Errorf("env = %+v", env)
	}
}

func TestReadSubnetEnvNamesWhatIsMissing(t *testing.T) {
	_, err := ReadSubnetEnv(writeEnv(t, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\n"))
	if err == nil || !strings.Contains(err.Error(), "FLANNEL_SUBNET, FLANNEL_IPMASQ") {
		t.Errorf("error %v, want FLANNEL_SUBNET and FLANNEL_IPMASQ named", err)
	}
	if _, err := ReadSubnetEnv(writeEnv(t, "FLANNEL_NETWORK=nonsense\n")); err == nil || !strings.Contains(err.Error(), "FLANNEL_NETWORK") {
		t.Errorf("error %v, want the bad FLANNEL_NETWORK named", err)
	}
	if _, err := ReadSubnetEnv(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "flanneld") {
		t.Errorf("error %v, want a hint at flanneld", err)
	}
}

// The delegate Flannel's manifest configures (hairpinMode,
// isDefaultGateway) becomes a bridge configuration on the node's subnet.
func TestDelegateFromManifestConf(t *testing.T) {
	conf, err := ParseConf([]byte(`{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.SubnetFile != DefaultSubnetFile || conf.DataDir != DefaultDataDir {
		t.Errorf("defaults %q %q", conf.SubnetFile, conf.DataDir)
	}
	env := SubnetEnv{MTU: 1450, IPMasq: true}
	env.Network, env.Subnet = mustPrefix(t, "10.244.0.0/16"), mustPrefix(t, "10.244.2.0/24")
	got, err := Delegate(conf, env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "cbr0", "type": "bridge", "cniVersion": "1.0.0", "hairpinMode": true, "isDefaultGateway": true,
		"isGateway": true, "ipMasq": false, "mtu": 1450,
		"ipam": map[string]any{
			"type":   "host-local",
			"ranges": []any{[]any{map[string]any{"subnet": "10.244.2.0/24"}}},
			"routes": []any{map[string]any{"dst": "10.244.0.0/16"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delegate\n%#v\nwant\n%#v", got, want)
	}
	// Without flanneld masquerading, the bridge does; what the delegate
	// sets stays.
	env.IPMasq = false
	conf.Delegate["mtu"] = 1400
	got, err = Delegate(conf, env)
	if err != nil {
		t.Fatal(err)
	}
	if got["ipMasq"] != true || got["mtu"] != 1400 {
		t.Errorf("ipMasq %v mtu %v, want true and the delegate's 1400", got["ipMasq"], got["mtu"])
	}
}

func TestDelegateRefusesOwnedKeys(t *testing.T) {
	for _, key := range []string{"name", "ipam"} {
		conf := Conf{Name: "cbr0", Delegate: map[string]any{key: "x"}}
		if _, err := Delegate(conf, SubnetEnv{}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v", key, err)
		}
	}
}

func TestDelegateKeptUntilDel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	data, _ := json.Marshal(map[string]any{"type": "bridge", "name": "cbr0"})
	if err := SaveDelegate(dir, "c1", data); err != nil {
		t.Fatal(err)
	}
	got, typ, err := LoadDelegate(dir, "c1")
	if err != nil || typ != "bridge" || string(got) != string(data) {
		t.Fatalf("LoadDelegate = %s, %q, %v", got, typ, err)
	}
	if err := ForgetDelegate(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDelegate(dir, "c1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after forgetting: %v, want not exist", err)
	}
	if err := SaveDelegate(dir, "../escape", data); err == nil {
		t.Error("a container ID with a slash was accepted")
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
