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
	if got, want := CNINames(), []string{CNIKubeRouter, CNINone, CNIReference}; !slices.Equal(got, want) {
		t.Errorf("CNINames() = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name          string
		enforcerArgs  []string
		wantEnforcer  bool
		wantArgs      []string
		wantInstalled bool
		wantErr       string
	}{
		{name: "", wantEnforcer: true},
		{name: CNIReference, wantEnforcer: true},
		{name: CNIReference, enforcerArgs: []string{"--profile", "delay"}, wantEnforcer: true},
		{name: CNINone, wantEnforcer: true, wantArgs: []string{"--profile", "none"}},
		{name: CNIKubeRouter, wantInstalled: true},
		{name: "weave", wantErr: `unknown CNI "weave": want one of kube-router, none, reference`},
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
		if choice.enforcer != tc.wantEnforcer || !slices.Equal(choice.enforcerArgs, tc.wantArgs) || (choice.installers != nil) != tc.wantInstalled {
			t.Errorf("CNI %q: enforcer %v %q, installs %v; want %v %q, %v", tc.name, choice.enforcer, choice.enforcerArgs, choice.installers != nil, tc.wantEnforcer, tc.wantArgs, tc.wantInstalled)
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
