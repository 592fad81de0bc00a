package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

// CiliumVersion is the Cilium release whose agent, CNI plugin and health
// checker the local cluster builds; the tools module in
// cluster/local/ciliumbin pins it (TestCiliumVersionMatchesToolsModule), and
// so does the cilium installer (cni.CiliumVersion, without the v).
const CiliumVersion = "v1.20.2"

// ciliumModule is the module the Cilium tools module builds from.
const ciliumModule = "github.com/cilium/cilium"

// ciliumBPFDir is the datapath's C sources in the Cilium module: the agent
// compiles them with clang at run time from LIB_DIR/bpf (its image has them
// at /var/lib/cilium/bpf).
const ciliumBPFDir = "bpf"

// CiliumBinaries are the local builds of what Cilium's agent image holds.
type CiliumBinaries struct {
	// Agent is cilium-agent (github.com/cilium/cilium/daemon).
	Agent string
	// CNI is the cilium-cni plugin.
	CNI string
	// Health is cilium-health, which the agent runs for its health checks.
	Health string
	// LibDir holds bpf/, the module's datapath sources, as the agent's
	// --lib-dir (the image's /var/lib/cilium).
	LibDir string
}

// ciliumTools is the build of Cilium's agent-image commands as its
// Makefiles build them (Makefile.defs: CGO off, tag osusergo, the version
// stamped into pkg/version).
func ciliumTools(version string) toolBuild {
	return toolBuild{
		title: "Cilium", module: ciliumModule, version: version,
		commands: []component{
			{"cilium-agent", ciliumModule + "/daemon"},
			{"cilium-cni", ciliumModule + "/plugins/cilium-cni"},
			{"cilium-health", ciliumModule + "/cilium-health"},
		},
		tags:    []string{"osusergo"},
		ldflags: "-s -w -X " + ciliumModule + "/pkg/version.ciliumVersion=" + strings.TrimPrefix(version, "v"),
	}
}

// EnsureCilium returns the Cilium binaries of opts.Version (default
// CiliumVersion), built once into the binary cache (CacheDir/cilium-VERSION)
// from the tools module in opts.SourceDir (cluster/local/ciliumbin), with
// the module's bpf/ tree beside them, read from the module's zip (checked
// against sum, the zip's h1: hash). Like EnsureBinaries, concurrent callers
// wait for one build. There are no prebuilt Cilium binaries:
// opts.PrebuiltDir must be empty.
func EnsureCilium(ctx context.Context, opts BuildOptions, sum string) (CiliumBinaries, error) {
	if opts.PrebuiltDir != "" {
		return CiliumBinaries{}, fmt.Errorf("cilium: prebuilt binaries (%s) are not supported: Cilium is built from %s", opts.PrebuiltDir, opts.SourceDir)
	}
	progress, version, _ := opts.resolve(CiliumVersion, "")
	root, err := CacheRoot(opts.CacheDir)
	if err != nil {
		return CiliumBinaries{}, err
	}
	versionDir := filepath.Join(root, "cilium-"+version)
	if err := ensureBuilt(ctx, opts.SourceDir, versionDir, ciliumTools(version), progress); err != nil {
		return CiliumBinaries{}, err
	}
	libDir := filepath.Join(versionDir, "lib")
	m := gomodule.Module{Path: ciliumModule, Version: version, Sum: sum}
	if err := ensureModuleTree(ctx, gomodule.Source{}, m, ciliumBPFDir, filepath.Join(libDir, ciliumBPFDir)); err != nil {
		return CiliumBinaries{}, err
	}
	bin := filepath.Join(versionDir, "bin")
	return CiliumBinaries{
		Agent:  filepath.Join(bin, "cilium-agent"),
		CNI:    filepath.Join(bin, "cilium-cni"),
		Health: filepath.Join(bin, "cilium-health"),
		LibDir: libDir,
	}, nil
}

// ensureModuleTree writes the files under dir of module m (read from src)
// into target, unless target is there: into a temporary sibling first,
// renamed into place when complete, so an interrupted copy never looks
// complete.
func ensureModuleTree(ctx context.Context, src gomodule.Source, m gomodule.Module, dir, target string) error {
	if _, err := os.Stat(target); err == nil {
		return nil
	}
	files, err := src.ReadFiles(ctx, m, func(name string) bool {
		return strings.HasPrefix(name, dir+"/")
	})
	if err != nil {
		return fmt.Errorf("reading %s/ of %s: %w", dir, m, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("%s has no files under %s/", m, dir)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(target), err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(target), filepath.Base(target)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating a directory for %s/ of %s: %w", dir, m, err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		path := filepath.Join(tmp, filepath.FromSlash(strings.TrimPrefix(name, dir+"/")))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("writing %s of %s: %w", name, m, err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("writing %s of %s: %w", name, m, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing %s/ of %s: %w", dir, m, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("moving %s/ of %s into the cache: %w", dir, m, err)
	}
	return nil
}
