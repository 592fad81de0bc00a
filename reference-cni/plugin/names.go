package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/netpolcheck/netpolcheck/reference-cni/ipam"
)

const (
	// HostVethPrefix starts the name of every node-side pod veth.
	HostVethPrefix = "npc"
	// aliasPrefix starts the alias that marks a node-side veth as ours and
	// records its owner, so GC can find leftovers without trusting names.
	aliasPrefix = "netpolcheck-cni/"
)

// HostVethName returns the name of the node-side veth of an attachment:
// "npc" and 12 hex digits of a hash of the container ID and interface name,
// 15 bytes in all (the kernel's limit).
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return HostVethPrefix + hex.EncodeToString(sum[:6])
}

// vethAlias is the alias of an attachment's node-side veth:
// "netpolcheck-cni/<network>/<containerID>/<ifname>". CNI forbids "/" in
// all three, so the alias parses back unambiguously.
func vethAlias(network string, owner ipam.Owner) string {
	return aliasPrefix + network + "/" + owner.ContainerID + "/" + owner.IfName
}

// parseVethAlias returns the owner recorded in alias if it marks a veth of
// network.
func parseVethAlias(network, alias string) (ipam.Owner, bool) {
	rest, ok := strings.CutPrefix(alias, aliasPrefix+network+"/")
	if !ok {
		return ipam.Owner{}, false
	}
	id, ifName, ok := strings.Cut(rest, "/")
	if !ok || id == "" || ifName == "" || strings.Contains(ifName, "/") {
		return ipam.Owner{}, false
	}
	return ipam.Owner{ContainerID: id, IfName: ifName}, true
}
