//go:build tools

// Package flannelbin records the flanneld command that the local cluster
// builds, so that `go mod tidy` keeps everything it needs in go.sum.
// Build it with (flanneld needs cgo):
//
//	CGO_ENABLED=1 go build -trimpath -o bin/ github.com/flannel-io/flannel
package flannelbin

import (
	_ "github.com/flannel-io/flannel"
)
