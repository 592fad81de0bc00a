package controlplane

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

func TestCiliumVersionMatchesToolsModule(t *testing.T) {
	const goMod = "../ciliumbin/go.mod"
	pinned, err := requiredVersion(goMod, ciliumModule)
	if err != nil {
		t.Fatal(err)
	}
	if pinned != CiliumVersion || "v"+cni.CiliumVersion != CiliumVersion {
		t.Errorf("%s requires %s %s, the installer pins %s, want CiliumVersion %s", goMod, ciliumModule, pinned, cni.CiliumVersion, CiliumVersion)
	}
}

// A tools module whose command lives in a directory not named like the
// command (Cilium's daemon is cilium-agent), and builds only with the
// build's tags: the cache holds it under the command's name.
func TestBuildNamesCommandsAndSetsTags(t *testing.T) {
	source := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(source, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/tools\n\ngo 1.26.0\n\nrequire example.com/upstream v1.0.0\n\nreplace example.com/upstream => ./upstream\n")
	write("upstream/go.mod", "module example.com/upstream\n\ngo 1.26.0\n")
	write("upstream/daemon/main.go", "//go:build tagone && tagtwo\n\npackage main\n\nfunc main() {}\n")
	write("upstream/daemon/untagged.go", "//go:build !tagone\n\npackage main\n\nthis does not compile\n")
	write("tools.go", "//go:build tools\n\npackage tools\n\nimport _ \"example.com/upstream/daemon\"\n")
	tools := toolBuild{
		title: "Upstream", module: "example.com/upstream", version: "v1.0.0",
		commands: []component{{"upstream-agent", "example.com/upstream/daemon"}},
		tags:     []string{"tagone", "tagtwo"},
		ldflags:  "-s -w",
	}
	versionDir := filepath.Join(t.TempDir(), "upstream-v1.0.0")
	if err := ensureBuilt(context.Background(), source, versionDir, tools, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(versionDir, "bin", "upstream-agent")); err != nil {
		t.Errorf("the command is not in the cache under its name: %v", err)
	}
	if !built(versionDir, tools) {
		t.Error("the build is not marked complete")
	}
}

// The datapath sources are copied from the pinned module's zip (through the
// Go toolchain, as builds download modules) into the cache once; a zip
// whose hash is not the pinned one is refused.
func TestEnsureModuleTreeCopiesCiliumBPF(t *testing.T) {
	ctx := context.Background()
	m := gomodule.Module{Path: ciliumModule, Version: CiliumVersion, Sum: cni.CiliumModuleSum}
	target := filepath.Join(t.TempDir(), "lib", "bpf")
	if err := ensureModuleTree(ctx, gomodule.Source{}, m, ciliumBPFDir, target); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bpf_lxc.c", "bpf_host.c", "bpf_overlay.c", "include/bpf/ctx/skb.h"} {
		if _, err := os.Stat(filepath.Join(target, filepath.FromSlash(name))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrong := m
	wrong.Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	err := ensureModuleTree(ctx, gomodule.Source{}, wrong, ciliumBPFDir, filepath.Join(t.TempDir(), "bpf"))
	if err == nil || !strings.Contains(err.Error(), ciliumModule) {
		t.Errorf("a zip with another hash: err = %v, want a refusal", err)
	}
}
