package controlplane

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// FlannelVersion is the Flannel release whose flanneld the local cluster
// runs with --cni flannel and flannel-kube-router; the tools module in
// cluster/local/flannelbin pins it (TestFlannelVersionMatchesToolsModule
// checks that they agree with cluster/cni's FlannelModule).
const FlannelVersion = "v0.28.10"

// EnvFlannelPrebuiltDir names a directory with ready flanneld and
// install-conf binaries of FlannelVersion; nothing is built then.
const EnvFlannelPrebuiltDir = "NETPOLCHECK_FLANNEL_BIN_DIR"

// flannelModule is the module the Flannel tools module builds from.
const flannelModule = "github.com/flannel-io/flannel"

// Flannel is the binaries of Flannel's image.
type Flannel struct {
	// Flanneld is the daemon, InstallConf the command its manifest's
	// install-cni init container runs to write the node's CNI
	// configuration.
	Flanneld, InstallConf string
}

// EnsureFlannel returns flanneld and install-conf of opts.Version (default
// FlannelVersion), each built once into the binary cache
// (CacheDir/NAME-VERSION/bin) from the tools module in opts.SourceDir
// (cluster/local/flannelbin), flanneld with cgo and stamped with its version
// as Flannel's Makefile builds it. opts.PrebuiltDir, defaulting to
// $NETPOLCHECK_FLANNEL_BIN_DIR, names a directory with both ready instead.
func EnsureFlannel(ctx context.Context, opts BuildOptions) (Flannel, error) {
	flanneld, err := ensureTool(ctx, opts, FlannelVersion, EnvFlannelPrebuiltDir, func(version string) toolBuild {
		return toolBuild{
			title: "flanneld", module: flannelModule, version: version,
			commands: []component{{"flanneld", flannelModule}},
			ldflags:  "-s -w -X " + flannelModule + "/pkg/version.Version=" + version,
			// Its UDP backend does not build without cgo.
			cgo: true,
		}
	}, checkFlanneldVersion)
	if err != nil {
		return Flannel{}, err
	}
	installConf, err := ensureTool(ctx, opts, FlannelVersion, EnvFlannelPrebuiltDir, func(version string) toolBuild {
		return toolBuild{
			title: "install-conf of Flannel", module: flannelModule, version: version,
			commands: []component{{"install-conf", flannelModule + "/cmd/install_conf"}},
			ldflags:  "-s -w",
		}
	}, nil)
	if err != nil {
		return Flannel{}, err
	}
	return Flannel{Flanneld: flanneld, InstallConf: installConf}, nil
}

// checkFlanneldVersion verifies that the flanneld at path reports version.
func checkFlanneldVersion(ctx context.Context, path, version string) error {
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("running %s --version: %w", path, err)
	}
	if got := strings.TrimSpace(string(out)); got != version {
		return fmt.Errorf("%s reports %q, want version %s", path, got, version)
	}
	return nil
}

// CNIPluginsVersion is the containernetworking/plugins release whose
// bridge, host-local, portmap and loopback plugins attach pods under
// Flannel; the tools module in cluster/local/cnipluginsbin pins it.
const CNIPluginsVersion = "v1.10.0"

// EnvCNIPluginsPrebuiltDir names a directory with ready bridge, host-local,
// portmap and loopback plugins of CNIPluginsVersion; nothing is built then.
const EnvCNIPluginsPrebuiltDir = "NETPOLCHECK_CNI_PLUGINS_BIN_DIR"

// cniPluginsModule is the module the CNI plugins tools module builds from.
const cniPluginsModule = "github.com/containernetworking/plugins"

// cniPlugins are the plugins the local cluster builds, by package.
var cniPlugins = []component{
	{"bridge", cniPluginsModule + "/plugins/main/bridge"},
	{"host-local", cniPluginsModule + "/plugins/ipam/host-local"},
	{"portmap", cniPluginsModule + "/plugins/meta/portmap"},
	{"loopback", cniPluginsModule + "/plugins/main/loopback"},
}

// EnsureCNIPlugins returns the paths of the bridge, host-local, portmap and
// loopback plugins of opts.Version (default CNIPluginsVersion) by name, each
// built once into the binary cache from the tools module in opts.SourceDir
// (cluster/local/cnipluginsbin). opts.PrebuiltDir, defaulting to
// $NETPOLCHECK_CNI_PLUGINS_BIN_DIR, names a directory with them ready.
func EnsureCNIPlugins(ctx context.Context, opts BuildOptions) (map[string]string, error) {
	paths := map[string]string{}
	for _, plugin := range cniPlugins {
		path, err := ensureTool(ctx, opts, CNIPluginsVersion, EnvCNIPluginsPrebuiltDir, func(version string) toolBuild {
			return toolBuild{
				title: plugin.name + " CNI plugin", module: cniPluginsModule, version: version,
				commands: []component{plugin},
				ldflags:  "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + version,
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		paths[plugin.name] = path
	}
	return paths, nil
}
