package cni

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

var semver = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)

func TestPinnedVersions(t *testing.T) {
	cases := []struct {
		name, version string
		wantV         bool
	}{
		{"calico", CalicoVersion, true},
		{"cilium chart", CiliumVersion, false}, // chart versions have no leading v
		{"flannel", FlannelVersion, true},
		{"kube-router", KubeRouterVersion, true},
	}
	for _, tc := range cases {
		if !semver.MatchString(tc.version) || strings.HasPrefix(tc.version, "v") != tc.wantV {
			t.Errorf("%s version %q: want a release version %s a leading v", tc.name, tc.version, map[bool]string{true: "with", false: "without"}[tc.wantV])
		}
	}
}

func TestPinnedURLs(t *testing.T) {
	cases := []struct {
		name, raw, host, path string
	}{
		{"calico", CalicoManifestURL, "raw.githubusercontent.com", "/projectcalico/calico/" + CalicoVersion + "/manifests/calico.yaml"},
		{"canal", CanalManifestURL, "raw.githubusercontent.com", "/projectcalico/calico/" + CalicoVersion + "/manifests/canal.yaml"},
		{"kube-router", KubeRouterManifestURL, "raw.githubusercontent.com", "/cloudnativelabs/kube-router/" + KubeRouterVersion + "/daemonset/kubeadm-kuberouter.yaml"},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if u.Scheme != "https" || u.Host != tc.host || u.Path != tc.path || u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("%s: URL %s, want https://%s%s", tc.name, tc.raw, tc.host, tc.path)
		}
	}
	if KubeRouterImage != kubeRouterRepository+":"+KubeRouterVersion || !isKubeRouterImage(KubeRouterImage) {
		t.Errorf("KubeRouterImage = %q", KubeRouterImage)
	}
}

// docs/kind.md lists the pinned versions; keep it in step.
func TestDocsNameEveryPin(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kind.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{CalicoVersion, CiliumVersion, FlannelVersion, KubeRouterVersion} {
		if !strings.Contains(string(doc), pin) {
			t.Errorf("docs/kind.md does not name the pinned version %s", pin)
		}
	}
}

func TestIsKubeRouterImage(t *testing.T) {
	cases := map[string]bool{
		"docker.io/cloudnativelabs/kube-router":                 true,
		"docker.io/cloudnativelabs/kube-router:v2.1.0":          true,
		"cloudnativelabs/kube-router:latest":                    true,
		"docker.io/cloudnativelabs/kube-router@sha256:0123abcd": true,
		"docker.io/cloudnativelabs/kube-router-other:v1":        false,
		"busybox": false,
		"registry.example:5000/cloudnativelabs/kube-router:v2.1": false,
	}
	for image, want := range cases {
		if got := isKubeRouterImage(image); got != want {
			t.Errorf("isKubeRouterImage(%q) = %v, want %v", image, got, want)
		}
	}
}

// The Cilium tools module that the local cluster builds from pins the same
// release, and its go.sum the same zip hash, as the installer reads the
// chart from.
func TestCiliumPinMatchesToolsModule(t *testing.T) {
	data, err := os.ReadFile("../local/ciliumbin/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	file, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := CiliumModule()
	var required string
	for _, req := range file.Require {
		if req.Mod.Path == m.Path {
			required = req.Mod.Version
		}
	}
	if required != m.Version {
		t.Errorf("cluster/local/ciliumbin requires %s %q, the installer pins %s", m.Path, required, m.Version)
	}
	sums, err := os.ReadFile("../local/ciliumbin/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if want := m.Path + " " + m.Version + " " + m.Sum; !slices.Contains(strings.Split(string(sums), "\n"), want) {
		t.Errorf("cluster/local/ciliumbin/go.sum has no line %q", want)
	}
}
