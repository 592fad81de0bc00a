//go:build tools

// Package ciliumbin records the Cilium commands that the local cluster
// builds, so that `go mod tidy` keeps everything they need in go.sum. The
// local cluster builds them as Cilium's own Makefiles do (operator/Makefile,
// Makefile.defs): CGO off, tags osusergo, plus ipam_provider_operator for the
// generic operator:
//
//	CGO_ENABLED=0 go build -trimpath -tags osusergo -o bin/ github.com/cilium/cilium/daemon github.com/cilium/cilium/plugins/cilium-cni github.com/cilium/cilium/cilium-health
//	CGO_ENABLED=0 go build -trimpath -tags osusergo,ipam_provider_operator -o bin/cilium-operator-generic github.com/cilium/cilium/operator
package ciliumbin

import (
	_ "github.com/cilium/cilium/cilium-health"
	_ "github.com/cilium/cilium/daemon"
	_ "github.com/cilium/cilium/plugins/cilium-cni"
)
