//go:build tools

// Package corednsbin records the CoreDNS command that the local cluster
// builds, so that `go mod tidy` keeps everything it needs in go.sum. Build it
// with:
//
//	CGO_ENABLED=0 go build -trimpath -o bin/coredns github.com/coredns/coredns
package corednsbin

import (
	_ "github.com/coredns/coredns"
)
