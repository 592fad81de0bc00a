//go:build tools

// Package kuberouterbin records the kube-router command that the local
// cluster builds, so that `go mod tidy` keeps everything it needs in go.sum.
// Build it with:
//
//	CGO_ENABLED=0 go build -trimpath -o bin/kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
package kuberouterbin

import (
	_ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
)
