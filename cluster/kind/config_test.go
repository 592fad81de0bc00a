package kind

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name      string
		workers   int
		nodeImage string
		wantRoles []v1alpha4.NodeRole
	}{
		{"single node", 0, NodeImage, []v1alpha4.NodeRole{"control-plane"}},
		{"default", DefaultWorkers, NodeImage, []v1alpha4.NodeRole{"control-plane", "worker", "worker"}},
		{"custom image", 3, "kindest/node:v1.37.0", []v1alpha4.NodeRole{"control-plane", "worker", "worker", "worker"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := ConfigYAML(Config("npc", tc.workers, tc.nodeImage))
			if err != nil {
				t.Fatal(err)
			}
			// Parse it back as kind does: strictly, into kind's own types.
			var got v1alpha4.Cluster
			if err := yaml.UnmarshalStrict(data, &got); err != nil {
				t.Fatalf("kind would reject the config: %v\n%s", err, data)
			}
			if got.Kind != "Cluster" || got.APIVersion != "kind.x-k8s.io/v1alpha4" || got.Name != "npc" {
				t.Errorf("kind %q apiVersion %q name %q", got.Kind, got.APIVersion, got.Name)
			}
			var roles []v1alpha4.NodeRole
			for _, n := range got.Nodes {
				roles = append(roles, n.Role)
				if n.Image != tc.nodeImage {
					t.Errorf("%s node runs %q, want %q", n.Role, n.Image, tc.nodeImage)
				}
			}
			if strings.Join(toStrings(roles), " ") != strings.Join(toStrings(tc.wantRoles), " ") {
				t.Errorf("nodes %v, want %v", roles, tc.wantRoles)
			}
			want := v1alpha4.Networking{IPFamily: "ipv4", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/16",
				DisableDefaultCNI: true, KubeProxyMode: "iptables"}
			if got.Networking.IPFamily != want.IPFamily || got.Networking.PodSubnet != want.PodSubnet ||
				got.Networking.ServiceSubnet != want.ServiceSubnet || got.Networking.DisableDefaultCNI != want.DisableDefaultCNI ||
				got.Networking.KubeProxyMode != want.KubeProxyMode || got.Networking.APIServerAddress != "" {
				t.Errorf("networking %+v, want %+v", got.Networking, want)
			}
			if !strings.Contains(string(data), "disableDefaultCNI: true") || !strings.Contains(string(data), "podSubnet: 10.244.0.0/16") {
				t.Errorf("the YAML does not spell the fields as kind documents them:\n%s", data)
			}
		})
	}
	if PodSubnet != cni.DefaultPodCIDR {
		t.Errorf("the kind pod subnet %s and the CNIs' pod CIDR %s differ", PodSubnet, cni.DefaultPodCIDR)
	}
}

func toStrings(roles []v1alpha4.NodeRole) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

// The pins agree with the kind module go.mod requires, whose default node
// image is the one its release was built and tested with.
func TestPins(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var required string
	for _, r := range mod.Require {
		if r.Mod.Path == KindModule {
			required = r.Mod.Version
		}
	}
	if required != KindVersion {
		t.Errorf("go.mod requires %s %s, KindVersion is %s", KindModule, required, KindVersion)
	}
	if NodeImage != defaults.Image {
		t.Errorf("NodeImage %s, kind %s's default node image is %s", NodeImage, KindVersion, defaults.Image)
	}
	if !strings.HasPrefix(NodeImage, "kindest/node:"+KubernetesVersion+"@sha256:") {
		t.Errorf("NodeImage %s is not kindest/node:%s pinned by digest", NodeImage, KubernetesVersion)
	}
	doc, err := os.ReadFile("../../docs/kind.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{KindVersion, KubernetesVersion, strings.TrimPrefix(NodeImage, "kindest/node:"+KubernetesVersion+"@")} {
		if !strings.Contains(string(doc), pin) {
			t.Errorf("docs/kind.md does not name the pin %s", pin)
		}
	}
}
