package cni

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netpolcheck/netpolcheck/reference-cni/deploy"
)

// reference installs netpolcheck's reference CNI: the DaemonSet of
// reference-cni/deploy (plugin, route agent, nftables enforcer) with the
// image of the options.
type reference struct{ opts Options }

func (r *reference) Name() string         { return "reference" }
func (r *reference) EnforcesPolicy() bool { return true }
func (r *reference) Source() string {
	return "reference-cni/deploy with image " + r.opts.Image
}

func (r *reference) Manifests(context.Context) ([]*unstructured.Unstructured, error) {
	// Load decodes the manifest strictly into typed objects: a malformed
	// manifest fails here rather than on the API server.
	if _, err := deploy.Load(r.opts.Image); err != nil {
		return nil, fmt.Errorf("reference CNI manifest: %w", err)
	}
	objs, err := Decode([]byte(deploy.Manifest(r.opts.Image)))
	if err != nil {
		return nil, fmt.Errorf("reference CNI manifest: %w", err)
	}
	return objs, nil
}
