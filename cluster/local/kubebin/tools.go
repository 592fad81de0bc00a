//go:build tools

// Package kubebin records the Kubernetes commands that the local cluster
// builds (the control plane, kube-proxy, kubectl, upstream's e2e.test with
// the Ginkgo CLI that runs it in parallel, and
// agnhost, the binary of the e2e test image that node agents bind-mount at
// /agnhost), so that
// `go mod tidy` keeps everything they need in go.sum. Build one with, for
// example:
//
//	CGO_ENABLED=0 go build -trimpath -o bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
package kubebin

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
