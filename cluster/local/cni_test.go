package local

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
)

func TestCNIChoices(t *testing.T) {
	if got, want := CNINames(), []string{CNIFlannel, CNIFlannelKubeRouter, CNIKubeRouter, CNINone, CNIReference}; !slices.Equal(got, want) {
		t.Errorf("CNINames() = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name          string
		enforcerArgs  []string
		wantEnforcer  bool
		wantArgs      []string
		wantInstalled bool
		// wantOwnNetwork: the CNI brings the network (no reference plugin).
		wantOwnNetwork bool
		wantErr        string
	}{
		{name: "", wantEnforcer: true},
		{name: CNIReference, wantEnforcer: true},
		{name: CNIReference, enforcerArgs: []string{"--profile", "delay"}, wantEnforcer: true},
		{name: CNINone, wantEnforcer: true, wantArgs: []string{"--profile", "none"}},
		{name: CNIKubeRouter, wantInstalled: true},
		{name: CNIFlannel, wantInstalled: true, wantOwnNetwork: true},
		{name: CNIFlannelKubeRouter, wantInstalled: true, wantOwnNetwork: true},
		{name: "weave", wantErr: `unknown CNI "weave": want one of flannel, flannel-kube-router, kube-router, none, reference`},
		{name: CNINone, enforcerArgs: []string{"--profile", "delay"}, wantErr: "go with CNI reference only, not none"},
		{name: CNIKubeRouter, enforcerArgs: []string{"--profile", "delay"}, wantErr: "go with CNI reference only, not kube-router"},
	} {
		choice, err := lookupCNI(tc.name, tc.enforcerArgs)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("lookupCNI(%q, %q): err %v, want %q", tc.name, tc.enforcerArgs, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("lookupCNI(%q, %q): %v", tc.name, tc.enforcerArgs, err)
		}
		if choice.enforcer != tc.wantEnforcer || !slices.Equal(choice.enforcerArgs, tc.wantArgs) || (choice.installers != nil) != tc.wantInstalled || choice.ownNetwork != tc.wantOwnNetwork {
			t.Errorf("CNI %q: enforcer %v %q, installs %v, own network %v; want %v %q, %v, %v", tc.name, choice.enforcer, choice.enforcerArgs,
				choice.installers != nil, choice.ownNetwork, tc.wantEnforcer, tc.wantArgs, tc.wantInstalled, tc.wantOwnNetwork)
		}
	}
}

// Under a runtime that takes the first configuration of /etc/cni/net.d, as
// containerd does, the reference CNI's stays first when kube-router's
// firewall manifest adds its own: with the plugin's usual name it would not.
func TestNodeConflistSortsBeforeKubeRouters(t *testing.T) {
	kubeRouter := path.Base(cni.KubeRouterFirewallConflist)
	if path.Dir(cni.KubeRouterFirewallConflist) != nodeCNIConfDir || path.Dir(NodeConflist) != nodeCNIConfDir {
		t.Fatalf("%s and %s are not both in %s", cni.KubeRouterFirewallConflist, NodeConflist, nodeCNIConfDir)
	}
	if first := slices.Min([]string{path.Base(NodeConflist), kubeRouter}); first != path.Base(NodeConflist) {
		t.Errorf("%s sorts before %s: a runtime would attach pods with kube-router's subnet-less bridge", kubeRouter, NodeConflist)
	}
	if first := slices.Min([]string{plugin.ConflistFileName, kubeRouter}); first != kubeRouter {
		t.Errorf("the plugin's own name %s sorts before %s: the test no longer shows why the local cluster renames it", plugin.ConflistFileName, kubeRouter)
	}
}

// The Flannel choices install Flannel from the shared installer, for nodes
// that have the CNI plugins and reach each other on eth0 (flannel-kube-router
// adds kube-router's firewall after it); Flannel's conflist sorts before
// kube-router's, so pods attach to Flannel's network.
func TestFlannelChoicesInstall(t *testing.T) {
	for name, want := range map[string][]string{
		CNIFlannel:           {"flannel"},
		CNIFlannelKubeRouter: {"flannel", "kube-router-firewall"},
	} {
		choice, err := lookupCNI(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		installers, err := choice.installers(cni.Options{PodCIDR: "10.244.0.0/16"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, inst := range installers {
			got = append(got, inst.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s installs %v, want %v", name, got, want)
		}
		if source := installers[0].Source(); strings.Contains(source, "bridge plugin from") {
			t.Errorf("%s: the Flannel installer adds the bridge plugin from the image (%s), though the nodes have it", name, source)
		}
	}
	if first := slices.Min([]string{path.Base(cni.FlannelConflist), path.Base(cni.KubeRouterFirewallConflist)}); first != path.Base(cni.FlannelConflist) {
		t.Errorf("%s sorts before %s", cni.KubeRouterFirewallConflist, cni.FlannelConflist)
	}
}

func TestFlannelBackendGoesWithFlannel(t *testing.T) {
	for _, tc := range []struct{ cni, backend, wantErr string }{
		{CNIReference, "", ""},
		{CNIFlannel, "", ""},
		{CNIFlannel, cni.FlannelHostGW, ""},
		{CNIFlannelKubeRouter, cni.FlannelVXLAN, ""},
		{CNIKubeRouter, cni.FlannelHostGW, "goes with CNI flannel or flannel-kube-router, not kube-router"},
		{CNIFlannel, "udp", `Flannel backend "udp": want vxlan or host-gw`},
	} {
		err := checkFlannelBackend(tc.cni, tc.backend)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s with backend %q: error %v, want %q", tc.cni, tc.backend, err, tc.wantErr)
		}
	}
}
