package nodeagent

import (
	"errors"
	"slices"
	"testing"
)

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.k8s.io/e2e-test-images/agnhost:2.53":  "e2e-test-images/agnhost",
		"registry.k8s.io/coredns/coredns:v1.15.0":       "coredns/coredns",
		"ghcr.io/netpolcheck/netpolcheck:dev":           "netpolcheck/netpolcheck",
		"netpolcheck:dev":                               "netpolcheck",
		"localhost:5000/agnhost@sha256:0123":            "agnhost",
		"docker.io/library/nginx:1.27":                  "nginx",
		"nginx":                                         "nginx",
		"gcr.io/kubernetes-e2e-test-images/agnhost:2.8": "kubernetes-e2e-test-images/agnhost",
	} {
		if got := repository(ref); got != want {
			t.Errorf("repository(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestResolveImage(t *testing.T) {
	binaries := map[string]string{
		BinaryAgnhost: "/cache/agnhost", BinaryCoreDNS: "/cache/coredns", BinaryProbe: "/bin/probe",
		BinaryCLI: "/bin/cli", BinaryCNI: "/bin/cni", BinaryRoutes: "/bin/routes", BinaryEnforcer: "/bin/enforcer",
		BinaryKubeRouter: "/cache/kube-router", BinaryFlanneld: "/cache/flanneld", BinaryFlannelInstallConf: "/cache/install-conf",
		BinarySubnetBridge: "/bin/subnet-bridge",
	}
	tests := []struct {
		ref       string
		wantFiles []imageFile
		wantErr   bool
	}{
		{ref: "registry.k8s.io/e2e-test-images/agnhost:2.53", wantFiles: []imageFile{{"/agnhost", "/cache/agnhost"}, {"/agnhost-2", "/cache/agnhost"}}},
		{ref: "agnhost:latest", wantFiles: []imageFile{{"/agnhost", "/cache/agnhost"}, {"/agnhost-2", "/cache/agnhost"}}},
		{ref: "registry.k8s.io/coredns/coredns:v1.11.1", wantFiles: []imageFile{{"/coredns", "/cache/coredns"}}},
		{ref: "ghcr.io/netpolcheck/netpolcheck:dev", wantFiles: []imageFile{
			{"/netpolcheck", "/bin/cli"}, {"/netpolcheck-cni", "/bin/cni"}, {"/netpolcheck-enforcer", "/bin/enforcer"},
			{"/netpolcheck-probe", "/bin/probe"}, {"/netpolcheck-routes", "/bin/routes"}}},
		{ref: "docker.io/cloudnativelabs/kube-router", wantFiles: []imageFile{{"/usr/local/bin/kube-router", "/cache/kube-router"}}},
		{ref: "cloudnativelabs/kube-router:v2.9.0", wantFiles: []imageFile{{"/usr/local/bin/kube-router", "/cache/kube-router"}}},
		{ref: "ghcr.io/flannel-io/flannel:v0.28.10", wantFiles: []imageFile{{"/opt/bin/flanneld", "/cache/flanneld"}, {"/opt/bin/install-conf", "/cache/install-conf"}}},
		{ref: "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3", wantFiles: []imageFile{{"/flannel", "/bin/subnet-bridge"}}},
		{ref: "registry.k8s.io/pause:3.10", wantErr: true},
		{ref: "example.com/other/agnhost-like:1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := resolveImage(tt.ref, binaries)
		if tt.wantErr {
			if !errors.Is(err, errImageNotMapped) {
				t.Errorf("resolveImage(%q) error = %v, want errImageNotMapped", tt.ref, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.files, tt.wantFiles) {
			t.Errorf("resolveImage(%q) = %v, %v; want %v", tt.ref, got.files, err, tt.wantFiles)
		}
	}
	binaries[BinarySuites] = "/bin/suites"
	withSuites, err := resolveImage("ghcr.io/netpolcheck/netpolcheck:dev", binaries)
	if want := (imageFile{"/suites", "/bin/suites"}); err != nil || !slices.Contains(withSuites.files, want) || len(withSuites.files) != 6 {
		t.Errorf("the project's image on a node given the compiled suites: %v, %v; want them at /suites too", withSuites.files, err)
	}
	if _, err := resolveImage("registry.k8s.io/e2e-test-images/agnhost:2.53", map[string]string{}); !errors.Is(err, errImageNotMapped) {
		t.Errorf("agnhost without its binary: error = %v, want errImageNotMapped", err)
	}
}

func TestImageArgv(t *testing.T) {
	agnhost := resolvedImage{entrypoint: []string{"/agnhost"}, cmd: []string{"pause"}}
	tests := []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/agnhost", "pause"}},
		{nil, []string{"serve-hostname"}, []string{"/agnhost", "serve-hostname"}},
		{[]string{"/bin/bash", "-c"}, []string{"/agnhost serve-hostname"}, []string{"/bin/bash", "-c", "/agnhost serve-hostname"}},
		{[]string{"/agnhost", "netexec"}, nil, []string{"/agnhost", "netexec"}},
	}
	for _, tt := range tests {
		if got := agnhost.argv(tt.command, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("argv(%q, %q) = %q, want %q", tt.command, tt.args, got, tt.want)
		}
	}
}

func TestResolveBusybox(t *testing.T) {
	binaries := map[string]string{BinaryBusybox: "/usr/bin/busybox"}
	for _, ref := range []string{"busybox", "busybox:1.36", "docker.io/library/busybox:latest", "docker.io/busybox@sha256:0123"} {
		got, err := resolveImage(ref, binaries)
		if err != nil || got.applets != "/usr/bin/busybox" || len(got.files) != 0 || !slices.Equal(got.argv(nil, nil), []string{"sh"}) {
			t.Errorf("resolveImage(%q) = %+v, %v; want busybox's applets and cmd sh", ref, got, err)
		}
	}
	if _, err := resolveImage("busybox", map[string]string{}); !errors.Is(err, errImageNotMapped) {
		t.Errorf("busybox without its binary: error = %v, want errImageNotMapped", err)
	}
}
