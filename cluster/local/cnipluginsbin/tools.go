//go:build tools

// Package cnipluginsbin records the CNI plugins that the local cluster
// builds for Flannel's pods (bridge, host-local, portmap, loopback), so
// that `go mod tidy` keeps everything they need in go.sum.
package cnipluginsbin

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
