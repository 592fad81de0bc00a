// Command netpolcheck-cni is the reference CNI plugin: routed point-to-point
// veths with host-local style IPAM. A container runtime runs it with the
// CNI_* environment and the network configuration on stdin; see package
// reference-cni/plugin.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/netpolcheck/netpolcheck/reference-cni/plugin"
)

func main() {
	skel.PluginMainFuncs(plugin.Funcs(), plugin.VersionInfo(), "netpolcheck-cni: routed veth CNI plugin of netpolcheck")
}
