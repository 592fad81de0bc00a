package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local"
)

// Without a checkout, local up takes the tools modules this executable
// carries, written into the cache, for each CNI's third-party binaries;
// a module given by a flag, or prebuilt binaries, are left alone.
func TestLocalDefaultsNeedNoCheckout(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("NETPOLCHECK_CACHE", cache)
	t.Chdir(t.TempDir()) // not the checkout
	opts := local.Options{CNI: local.CNIFlannelKubeRouter}
	opts.CoreDNS.PrebuiltDir = "/prebuilt/coredns"
	opts.CNIPlugins.SourceDir = "/given/cnipluginsbin"
	if err := localDefaults(&opts); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"kubebin": opts.Kube.SourceDir, "agnhost's kubebin": opts.Agnhost.SourceDir,
		"kuberouterbin": opts.KubeRouter.SourceDir, "flannelbin": opts.Flannel.SourceDir,
	} {
		module := strings.TrimPrefix(name, "agnhost's ")
		if !strings.HasPrefix(dir, filepath.Join(cache, "toolmods", module+"-")) {
			t.Errorf("%s: source %q, want the cache's toolmods/%s-HASH", name, dir, module)
		} else if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if opts.CoreDNS.SourceDir != "" || opts.CNIPlugins.SourceDir != "/given/cnipluginsbin" {
		t.Errorf("given modules changed: coredns %q, CNI plugins %q", opts.CoreDNS.SourceDir, opts.CNIPlugins.SourceDir)
	}
}
