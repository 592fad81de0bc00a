package cni

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ciliumValues are the chart values the installer sets: the values Cilium's
// kind guide gives (pod CIDRs from the nodes, images preloaded or pulled
// once), and one operator replica to keep a CI-sized cluster light.
// Everything else is the chart's default: VXLAN tunnel beside kube-proxy.
func ciliumValues() []string {
	return []string{
		"ipam.mode=kubernetes",
		"image.pullPolicy=IfNotPresent",
		"operator.replicas=1",
	}
}

// cilium installs Cilium from its pinned Helm chart, rendered with `helm
// template` (helm must be on PATH; GitHub's runners have it) and applied
// like every other manifest: no Helm release is recorded in the cluster,
// the cilium CLI is not needed, and the rendered objects are checked and
// waited for like the other installers'. Node pod CIDRs come from the cluster (ipam.mode=kubernetes).
type cilium struct{ opts Options }

func (c *cilium) Name() string         { return "cilium" }
func (c *cilium) EnforcesPolicy() bool { return true }
func (c *cilium) Source() string {
	return "Helm chart cilium " + CiliumVersion + " from " + CiliumChartRepo
}

// helmArgs is the helm command line that renders the chart.
func (c *cilium) helmArgs() []string {
	args := []string{"template", "cilium", "cilium",
		"--repo", CiliumChartRepo, "--version", CiliumVersion, "--namespace", "kube-system"}
	if c.opts.KubeVersion != "" {
		args = append(args, "--kube-version", c.opts.KubeVersion)
	}
	for _, value := range ciliumValues() {
		args = append(args, "--set", value)
	}
	return args
}

func (c *cilium) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	out, err := c.opts.Helm(ctx, c.helmArgs()...)
	if err != nil {
		return nil, fmt.Errorf("rendering the cilium %s chart: %w", CiliumVersion, err)
	}
	objs, err := Decode(out)
	if err != nil {
		return nil, fmt.Errorf("decoding the cilium %s chart: %w", CiliumVersion, err)
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "cilium")
	if err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	if _, err := container(ds, "cilium-agent"); err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	if _, err := mustFind(objs, "Deployment", "kube-system", "cilium-operator"); err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	return objs, nil
}
